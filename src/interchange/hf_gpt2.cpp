#include "src/interchange/hf_gpt2.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "checkpoints/hf/safetensors.h"
#include "data/file_util.h"
#include "src/core/check.h"
#include "src/core/log.h"
#include "src/model/params.h"

namespace kdgrid {
namespace {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kEndOfText = "<|endoftext|>";
// kdgrid's LayerNorm eps (DESIGN section 4); an imported model must use the same.
constexpr double kLayerNormEps = 1e-5;

// Where a kdgrid tensor lives in an HF GPT2LMHeadModel: its name after the "transformer."
// prefix, and whether it is a Conv1D weight ([in, out], the transpose of kdgrid's [out, in]).
struct HfTensor {
  std::string name;
  bool transposed = false;
};

HfTensor hfTensorOf(const std::string& kd_name) {
  if (kd_name == "tok_emb") return {"wte.weight"};
  if (kd_name == "pos_emb") return {"wpe.weight"};
  if (kd_name.starts_with("ln_f.")) return {kd_name};
  // blocks.{i}.REST
  const size_t dot = kd_name.find('.', 7);
  KDGRID_CHECK(kd_name.starts_with("blocks.") && dot != std::string::npos,
               "unexpected parameter name {}", kd_name);
  const std::string layer = kd_name.substr(7, dot - 7);
  const std::string rest = kd_name.substr(dot + 1);
  static const std::map<std::string, HfTensor> kBlock = {
      {"ln1.weight", {"ln_1.weight"}},
      {"ln1.bias", {"ln_1.bias"}},
      {"attn.qkv.weight", {"attn.c_attn.weight", true}},
      {"attn.qkv.bias", {"attn.c_attn.bias"}},
      {"attn.out.weight", {"attn.c_proj.weight", true}},
      {"attn.out.bias", {"attn.c_proj.bias"}},
      {"ln2.weight", {"ln_2.weight"}},
      {"ln2.bias", {"ln_2.bias"}},
      {"mlp.fc1.weight", {"mlp.c_fc.weight", true}},
      {"mlp.fc1.bias", {"mlp.c_fc.bias"}},
      {"mlp.fc2.weight", {"mlp.c_proj.weight", true}},
      {"mlp.fc2.bias", {"mlp.c_proj.bias"}},
  };
  const auto it = kBlock.find(rest);
  KDGRID_CHECK(it != kBlock.end(), "unexpected parameter name {}", kd_name);
  return {"h." + layer + "." + it->second.name, it->second.transposed};
}

// [rows, cols] row-major -> [cols, rows] row-major.
std::vector<float> transpose(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) y[c * rows + r] = x[r * cols + c];
  }
  return y;
}

// The tensor's shape in the HF file: biases and LayerNorm parameters (kdgrid's [n, 1]) are 1-D;
// the embeddings and Conv1D weights stay 2-D whatever their sizes (a [C, 1] weight is 2-D).
std::vector<int64_t> hfShape(const ParamSpec& spec, bool transposed) {
  if (!transposed && spec.name != "tok_emb" && spec.name != "pos_emb") return {spec.rows};
  return transposed ? std::vector<int64_t>{spec.cols, spec.rows}
                    : std::vector<int64_t>{spec.rows, spec.cols};
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// config.json integer `key` (required unless `fallback` is given), in [1, 2^31).
int configInt(const nlohmann::json& cfg, const std::string& path, const char* key,
              std::optional<int> fallback = std::nullopt) {
  if (!cfg.contains(key) || cfg[key].is_null()) {
    KDGRID_INPUT_CHECK(fallback.has_value(), "{}: missing \"{}\"", path, key);
    return *fallback;
  }
  const nlohmann::json& v = cfg[key];
  KDGRID_INPUT_CHECK(
      v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() < (int64_t{1} << 31),
      "{}: \"{}\" must be a positive integer (got {})", path, key, v.dump());
  return static_cast<int>(v.get<int64_t>());
}

// config.json boolean `key`, `fallback` when absent (transformers' GPT2Config default).
bool configBool(const nlohmann::json& cfg, const std::string& path, const char* key,
                bool fallback) {
  if (!cfg.contains(key) || cfg[key].is_null()) return fallback;
  KDGRID_INPUT_CHECK(cfg[key].is_boolean(), "{}: \"{}\" must be true or false (got {})", path, key,
                     cfg[key].dump());
  return cfg[key].get<bool>();
}

// config.json string `key`, `fallback` when absent.
std::string configString(const nlohmann::json& cfg, const std::string& path, const char* key,
                         const std::string& fallback) {
  if (!cfg.contains(key) || cfg[key].is_null()) return fallback;
  KDGRID_INPUT_CHECK(cfg[key].is_string(), "{}: \"{}\" must be a string (got {})", path, key,
                     cfg[key].dump());
  return cfg[key].get<std::string>();
}

nlohmann::json readConfigJson(const std::string& path) {
  nlohmann::json cfg =
      nlohmann::json::parse(readWholeFile(path, "Hugging Face config"), nullptr, false);
  KDGRID_INPUT_CHECK(!cfg.is_discarded() && cfg.is_object(), "{}: not a JSON object", path);
  return cfg;
}

// The model config.json describes, refusing what kdgrid does not compute.
ModelConfig readHfConfig(const nlohmann::json& cfg, const std::string& path) {
  const std::string model_type = configString(cfg, path, "model_type", "");
  KDGRID_INPUT_CHECK(model_type == "gpt2", "{}: model_type is \"{}\"; only \"gpt2\" is supported",
                     path, model_type);
  const std::string activation = configString(cfg, path, "activation_function", "gelu_new");
  // Both names are GELU's tanh approximation in transformers (DESIGN section 4).
  KDGRID_INPUT_CHECK(activation == "gelu_new" || activation == "gelu_pytorch_tanh",
                     "{}: activation_function \"{}\" is not GELU's tanh approximation "
                     "(gelu_new), the only one kdgrid computes",
                     path, activation);
  double eps = kLayerNormEps;
  if (cfg.contains("layer_norm_epsilon")) {
    KDGRID_INPUT_CHECK(cfg["layer_norm_epsilon"].is_number(),
                       "{}: \"layer_norm_epsilon\" must be a number (got {})", path,
                       cfg["layer_norm_epsilon"].dump());
    eps = cfg["layer_norm_epsilon"].get<double>();
  }
  KDGRID_INPUT_CHECK(std::fabs(eps - kLayerNormEps) <= 1e-12,
                     "{}: layer_norm_epsilon {} differs from kdgrid's fixed {}", path, eps,
                     kLayerNormEps);
  KDGRID_INPUT_CHECK(configBool(cfg, path, "scale_attn_weights", true),
                     "{}: scale_attn_weights false is not supported (kdgrid scales attention "
                     "by 1/sqrt(head_dim))",
                     path);
  KDGRID_INPUT_CHECK(!configBool(cfg, path, "scale_attn_by_inverse_layer_idx", false),
                     "{}: scale_attn_by_inverse_layer_idx true is not supported", path);
  KDGRID_INPUT_CHECK(!configBool(cfg, path, "add_cross_attention", false),
                     "{}: add_cross_attention true is not supported", path);
  ModelConfig c;
  c.n_layer = configInt(cfg, path, "n_layer");
  c.n_head = configInt(cfg, path, "n_head");
  c.d_model = configInt(cfg, path, "n_embd");
  // Far beyond any real GPT-2 (n_embd 1600); keeps the n_inner default 4 * n_embd in an int.
  KDGRID_INPUT_CHECK(c.d_model <= (1 << 24), "{}: \"n_embd\" {} is too large", path, c.d_model);
  c.d_ff = configInt(cfg, path, "n_inner", 4 * c.d_model);
  c.vocab_size = configInt(cfg, path, "vocab_size");
  c.max_seq = configInt(cfg, path, "n_positions");
  c.attn_window = 0;
  KDGRID_INPUT_CHECK(c.d_model % c.n_head == 0, "{}: n_embd {} is not a multiple of n_head {}",
                     path, c.d_model, c.n_head);
  return c;
}

}  // namespace

void exportHfGpt2(const ModelConfig& config, const NamedTensors& tensors,
                  const Tokenizer& tokenizer, const std::string& dir) {
  KDGRID_INPUT_CHECK(config.attn_window == 0,
                     "--checkpoint: the model uses a sliding attention window (attn_window {}); "
                     "transformers' GPT-2 attends to the whole causal context, so the exported "
                     "model would compute something else. Export a model trained without "
                     "--attn-window.",
                     config.attn_window);
  KDGRID_INPUT_CHECK(tokenizer.vocabSize() <= static_cast<uint32_t>(config.vocab_size),
                     "--tokenizer: {} tokens, more than the model's vocab_size {}",
                     tokenizer.vocabSize(), config.vocab_size);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  KDGRID_INPUT_CHECK(!ec, "--out {}: cannot create the directory: {}", dir, ec.message());

  SafetensorsWriter writer;
  writer.setMetadata("format", "pt");  // what transformers expects of a PyTorch model
  for (const ParamSpec& spec : gpt2ParamSpecs(config)) {
    const auto it = tensors.find(spec.name);
    KDGRID_CHECK(it != tensors.end() && it->second.size() == size_t(spec.rows * spec.cols),
                 "tensor {} missing or of the wrong size", spec.name);
    const HfTensor hf = hfTensorOf(spec.name);
    writer.add("transformer." + hf.name, hfShape(spec, hf.transposed),
               hf.transposed ? transpose(it->second, spec.rows, spec.cols) : it->second);
  }
  writer.write(dir + "/" + kWeightsFile);

  const int eot = static_cast<int>(tokenizer.eotToken());
  nlohmann::ordered_json cfg = {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"n_layer", config.n_layer},
      {"n_head", config.n_head},
      {"n_embd", config.d_model},
      {"n_inner", config.d_ff},
      {"n_positions", config.max_seq},
      {"n_ctx", config.max_seq},
      {"vocab_size", config.vocab_size},
      {"activation_function", "gelu_new"},
      {"layer_norm_epsilon", kLayerNormEps},
      {"scale_attn_weights", true},
      {"scale_attn_by_inverse_layer_idx", false},
      {"reorder_and_upcast_attn", false},
      {"tie_word_embeddings", true},
      // kdgrid trains without dropout; so does the exported model unless the user says so.
      {"attn_pdrop", 0.0},
      {"embd_pdrop", 0.0},
      {"resid_pdrop", 0.0},
      {"initializer_range", 0.02},
      {"bos_token_id", eot},
      {"eos_token_id", eot},
      {"torch_dtype", "float32"},
      {"use_cache", true},
  };
  writeFileAtomically(dir + "/" + kConfigFile, cfg.dump(2) + "\n", "Hugging Face config");

  tokenizer.writeGpt2Files(dir);
  const nlohmann::ordered_json special = {
      {"bos_token", kEndOfText}, {"eos_token", kEndOfText}, {"unk_token", kEndOfText}};
  nlohmann::ordered_json tok_cfg = special;
  tok_cfg["tokenizer_class"] = "GPT2Tokenizer";
  tok_cfg["model_max_length"] = config.max_seq;
  tok_cfg["add_prefix_space"] = false;
  tok_cfg["add_bos_token"] = false;
  writeFileAtomically(dir + "/tokenizer_config.json", tok_cfg.dump(2) + "\n", "tokenizer config");
  writeFileAtomically(dir + "/special_tokens_map.json", special.dump(2) + "\n",
                      "special tokens map");
}

HfGpt2Model importHfGpt2(const std::string& dir) {
  const std::string config_path = dir + "/" + kConfigFile;
  const std::string weights_path = dir + "/" + kWeightsFile;
  const std::string vocab_path = dir + "/vocab.json";
  const std::string merges_path = dir + "/merges.txt";
  for (const std::string& p : {config_path, weights_path, vocab_path, merges_path}) {
    KDGRID_INPUT_CHECK(std::filesystem::is_regular_file(p),
                       "--from hf {}: {} is missing (needed: config.json, model.safetensors, "
                       "vocab.json, merges.txt)",
                       dir, p);
  }
  const nlohmann::json cfg = readConfigJson(config_path);
  ModelConfig config = readHfConfig(cfg, config_path);
  Tokenizer tokenizer = Tokenizer::fromGpt2Files(vocab_path, merges_path);
  KDGRID_INPUT_CHECK(tokenizer.vocabSize() <= static_cast<uint32_t>(config.vocab_size),
                     "{}: the tokenizer has {} tokens, more than vocab_size {} of {}", vocab_path,
                     tokenizer.vocabSize(), config.vocab_size, config_path);
  {
    const auto eos = cfg.find("eos_token_id");
    if (eos != cfg.end() && eos->is_number_integer() &&
        eos->get<int64_t>() != static_cast<int64_t>(tokenizer.eotToken())) {
      log0(
          "warning: {}: eos_token_id {} is not the id of <|endoftext|> in {} ({}); kdgrid uses "
          "the tokenizer's",
          config_path, eos->dump(), vocab_path, tokenizer.eotToken());
    }
  }

  const SafetensorsReader file(weights_path);
  // GPT2LMHeadModel saves "transformer.wte.weight", a bare GPT2Model "wte.weight".
  const std::string prefix = file.find("transformer.wte.weight") ? "transformer." : "";
  NamedTensors tensors;
  std::set<std::string> used;
  for (const ParamSpec& spec : gpt2ParamSpecs(config)) {
    const HfTensor hf = hfTensorOf(spec.name);
    const std::string name = prefix + hf.name;
    const SafetensorsEntry* e = file.find(name);
    KDGRID_INPUT_CHECK(e != nullptr, "{}: tensor {} is missing", weights_path, name);
    const std::vector<int64_t> want = hfShape(spec, hf.transposed);
    KDGRID_INPUT_CHECK(e->shape == want, "{}: tensor {} has shape {}, expected {} from {}",
                       weights_path, name, shapeText(e->shape), shapeText(want), config_path);
    std::vector<float> values = file.readFloat32(*e);
    tensors[spec.name] =
        hf.transposed ? transpose(values, spec.cols, spec.rows) : std::move(values);
    used.insert(name);
  }
  const bool tied = configBool(cfg, config_path, "tie_word_embeddings", true);
  KDGRID_INPUT_CHECK(tied || file.find("lm_head.weight") != nullptr,
                     "{}: tie_word_embeddings is false but {} has no lm_head.weight", config_path,
                     weights_path);
  for (const SafetensorsEntry& e : file.entries()) {
    if (used.contains(e.name)) continue;
    // Causal-mask buffers that older transformers versions saved; not parameters.
    if (e.name.ends_with(".attn.bias") || e.name.ends_with(".attn.masked_bias")) continue;
    if (e.name == "lm_head.weight") {
      // kdgrid ties the LM head to the token embedding (DESIGN section 4): accept a separate
      // head only when it is the same matrix.
      KDGRID_INPUT_CHECK(e.shape == std::vector<int64_t>({config.vocab_size, config.d_model}),
                         "{}: tensor lm_head.weight has shape {}, expected [{}, {}]", weights_path,
                         shapeText(e.shape), config.vocab_size, config.d_model);
      KDGRID_INPUT_CHECK(file.readFloat32(e) == tensors.at("tok_emb"),
                         "{}: tensor lm_head.weight differs from {}wte.weight: the model has an "
                         "untied LM head, but kdgrid ties it to the token embedding",
                         weights_path, prefix);
      continue;
    }
    throw UsageError(fmt::format("{}: unexpected tensor {} (not part of a GPT-2 kdgrid can load)",
                                 weights_path, e.name));
  }
  return HfGpt2Model{config, std::move(tensors), std::move(tokenizer)};
}

}  // namespace kdgrid
