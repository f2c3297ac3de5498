#include "src/train/config.h"

#include <cmath>
#include <ostream>

namespace kdgrid {

po::options_description trainOptions(TrainConfig& c) {
  po::options_description o("Training");
  o.add_options()
    ("run-dir", po::value(&c.run_dir)->value_name("DIR"), "run directory (config, metrics, checkpoints)")
    ("data", po::value(&c.data)->value_name("DIR[:W],..."), "token shard directories, mixed by weight")
    ("val-data", po::value(&c.val_data)->value_name("DIR"), "validation token shards")
    ("steps", po::value(&c.steps)->default_value(c.steps), "total optimizer steps (across resumes)")
    ("batch-size", po::value(&c.batch_size)->default_value(c.batch_size),
     "sequences per micro-batch per data-parallel rank")
    ("grad-accum", po::value(&c.grad_accum)->default_value(c.grad_accum), "micro-batches per step")
    ("lr", valueWithDefault(&c.lr), "peak learning rate")
    ("min-lr", valueWithDefault(&c.min_lr), "final learning rate (< 0: lr / 10)")
    ("warmup-steps", po::value(&c.warmup_steps)->default_value(c.warmup_steps), "linear warmup steps")
    ("weight-decay", valueWithDefault(&c.weight_decay),
     "AdamW decoupled weight decay (weights and embeddings only)")
    ("grad-clip", valueWithDefault(&c.grad_clip), "global gradient-norm clip (0 = off)")
    ("seed", po::value(&c.seed)->default_value(c.seed), "seed for initialisation and data order")
    ("precision", enumValue(&c.precision)->default_value(c.precision), "fp32 | bf16 | fp16")
    ("recompute", enumValue(&c.recompute)->default_value(c.recompute),
     "activation recomputation: none | selective (MLP) | full (whole blocks)")
    ("eval-every", po::value(&c.eval_every)->default_value(c.eval_every),
     "validation every N steps (0 = only after the last step)")
    ("val-tokens", po::value(&c.val_tokens)->default_value(c.val_tokens),
     "validation target tokens per evaluation (0 = all)")
    ("save-every", po::value(&c.save_every)->default_value(c.save_every),
     "checkpoint every N steps (0 = only after the last step)")
    ("keep-checkpoints", po::value(&c.keep_checkpoints)->default_value(c.keep_checkpoints),
     "complete checkpoints kept (older ones deleted; best is kept too)")
    ("no-resume", po::bool_switch(&c.no_resume), "start fresh even if the run directory has a checkpoint")
    ("adv-epsilon", valueWithDefault(&c.adv_epsilon),
     "adversarial training: perturb the input embeddings by E * sign(d clean loss / d embeddings) "
     "in one extra forward and backward per micro-batch (0 = off; train and distill, any grid)")
    ("adv-weight", valueWithDefault(&c.adv_weight),
     "adversarial training: loss = (1 - W) * clean + W * adversarial, W in (0, 1)")
    ("on-nan", enumValue(&c.on_nan)->default_value(c.on_nan),
     "non-finite loss or gradients (fp32/bf16): skip (the update, with a warning) | stop (exit 1, "
     "saving nothing); fp16 always skips and halves the loss scale");
  return o;
}

void TrainConfig::validate() const {
  KDGRID_OPTION_CHECK(!run_dir.empty(), "--run-dir is required");
  KDGRID_OPTION_CHECK(!data.empty(), "--data is required");
  KDGRID_OPTION_CHECK(steps >= 1, "--steps must be >= 1 (got {})", steps);
  KDGRID_OPTION_CHECK(batch_size >= 1, "--batch-size must be >= 1 (got {})", batch_size);
  KDGRID_OPTION_CHECK(grad_accum >= 1, "--grad-accum must be >= 1 (got {})", grad_accum);
  KDGRID_OPTION_CHECK(lr > 0 && std::isfinite(lr), "--lr must be a positive number (got {})", lr);
  KDGRID_OPTION_CHECK(minLr() <= lr, "--min-lr {} exceeds --lr {}", minLr(), lr);
  KDGRID_OPTION_CHECK(warmup_steps >= 0, "--warmup-steps must be >= 0");
  KDGRID_OPTION_CHECK(weight_decay >= 0, "--weight-decay must be >= 0");
  KDGRID_OPTION_CHECK(grad_clip >= 0, "--grad-clip must be >= 0 (0 = off)");
  KDGRID_OPTION_CHECK(eval_every >= 0 && save_every >= 0 && val_tokens >= 0,
                      "--eval-every, --save-every and --val-tokens must be >= 0");
  KDGRID_OPTION_CHECK(keep_checkpoints >= 1, "--keep-checkpoints must be >= 1");
  KDGRID_OPTION_CHECK(adv_epsilon >= 0 && std::isfinite(adv_epsilon),
                      "--adv-epsilon must be >= 0 (got {})", adv_epsilon);
  // W = 1 would need the clean pass's input gradient without its parameter gradient.
  KDGRID_OPTION_CHECK(adv_epsilon == 0 || (adv_weight > 0 && adv_weight < 1),
                      "--adv-weight must be in (0, 1) with --adv-epsilon > 0 (got {})", adv_weight);
}

void validate(boost::any& out, const std::vector<std::string>& args, OnNan*, int) {
  parseEnumWord(out, args, kOnNanWords);
}

std::ostream& operator<<(std::ostream& os, OnNan on_nan) {
  return os << enumWord(on_nan, kOnNanWords);
}

double learningRate(const TrainConfig& c, int64_t step) {
  if (step < c.warmup_steps) return c.lr * static_cast<double>(step + 1) / c.warmup_steps;
  const double decay_steps = static_cast<double>(c.steps - c.warmup_steps);
  const double progress = decay_steps > 0 ? (step - c.warmup_steps) / decay_steps : 1.0;
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
  return c.minLr() + (c.lr - c.minLr()) * cosine;
}

}  // namespace kdgrid
