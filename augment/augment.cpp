// The `augment` pipeline (DESIGN sections 2 and 6): the options, their checks and the
// dispatch to a method. Text methods (backtranslate, perturb) run through augment_run.h, which
// deals whole input shards over the ranks; fgsm (token shards, a checkpoint, the model's
// input-embedding gradient) through fgsm_run.h.
#include "augment/augment.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <span>

#include "augment/augment_run.h"
#include "augment/backtranslate.h"
#include "augment/fgsm_run.h"
#include "augment/perturb.h"
#include "augment/wordnet.h"
#include "src/core/agreement.h"
#include "src/core/log.h"

namespace kdgrid {

using augment::Method;

po::options_description AugmentConfig::describe() {
  po::options_description common("Augment");
  // clang-format off
    common.add_options()
        ("method", po::value(&method)->required()->value_name("NAME"),
         "backtranslate | perturb (text shards) | fgsm (token shards)")
        ("input", po::value(&input)->required()->value_name("DIR"),
         "directory of kdgrid-text shards (fgsm: kdgrid-tokens shards), e.g. prepare's "
         "OUT/train")
        ("out", po::value(&out)->required()->value_name("DIR"),
         "writes one augmented shard per input shard, with the input shard's file name")
        ("seed", po::value(&seed)->default_value(seed)->value_name("S"),
         "random choices are keyed by (seed, document, variant)");
    po::options_description bt("Back-translation (--method backtranslate)");
    bt.add_options()
        ("bt-pivots", po::value(&bt_pivots)->default_value(bt_pivots)->value_name("LIST"),
         "Apertium pivot languages, comma-separated; one variant per pivot (modes "
         "LANG-PIVOT and PIVOT-LANG)")
        ("bt-command", po::value(&bt_command)->value_name("CMD"),
         "instead of Apertium: a shell command that reads sentences, one per line, and writes "
         "one round-tripped line per line")
        ("bt-lang", po::value(&bt_lang)->default_value(bt_lang)->value_name("CODE"),
         "Apertium code of the documents' language")
        ("apertium-dir", po::value(&apertium_dir)->default_value(apertium_dir)->value_name("DIR"),
         "Apertium data directory (holds modes/)")
        ("bt-lookahead-mb",
         valueWithDefault(&bt_lookahead_mb)->value_name("MB"),
         "text sent to a translator ahead of the output awaited; must exceed what the translator "
         "buffers (memory: about this much per rank, plus one shard)");
    po::options_description eda("Perturbation (--method perturb)");
    eda.add_options()
        ("eda-sr", valueWithDefault(&rates.sr)->value_name("F"),
         "synonym replacement: fraction of words replaced, [0, 0.5]")
        ("eda-ri", valueWithDefault(&rates.ri)->value_name("F"),
         "random insertion: synonyms inserted per word, [0, 0.5]")
        ("eda-rs", valueWithDefault(&rates.rs)->value_name("F"),
         "random swap: pairs swapped per word, [0, 0.5]")
        ("eda-rd", valueWithDefault(&rates.rd)->value_name("F"),
         "random deletion: fraction of words deleted, [0, 0.5]")
        ("num-aug", po::value(&num_aug)->default_value(num_aug)->value_name("N"),
         "variants per document")
        ("wordnet-dir", po::value(&wordnet_dir)->default_value(wordnet_dir)->value_name("DIR"),
         "WordNet 3.0 database (Debian package wordnet-base)");
    po::options_description adv("FGSM (--method fgsm)");
    adv.add_options()
        ("checkpoint", po::value(&fgsm.checkpoint)->value_name("CKPT"),
         "model to attack: a step directory or a run directory (its latest); required")
        ("epsilon", valueWithDefault(&fgsm.epsilon)->value_name("E"),
         "step in embedding space: x' = x + E * sign(d loss / d x), then the nearest other "
         "token embedding; > 0")
        ("max-flips", po::value(&fgsm.max_flips)->default_value(fgsm.max_flips)->value_name("K"),
         "most tokens changed per window (each kept only if it raises the loss); >= 1")
        ("save-deltas", po::bool_switch(&fgsm.save_deltas),
         "also write /fgsm/deltas float16 [n_tokens, d_model] = E * sign(gradient)")
      ("device", po::value(&fgsm.device)->default_value(fgsm.device)->value_name("NAME"),
       "backend the model computes on");
  // clang-format on
  common.add(bt).add(eda).add(adv);
  return common;
}

std::vector<std::string> AugmentConfig::pivots() const {
  std::vector<std::string> list;
  size_t begin = 0;
  for (;;) {
    const size_t comma = bt_pivots.find(',', begin);
    list.push_back(bt_pivots.substr(begin, comma - begin));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return list;
}

namespace {
bool isLanguageCode(const std::string& code) {
  return !code.empty() && std::all_of(code.begin(), code.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  });
}

}  // namespace

Method AugmentConfig::validate(const po::variables_map& vm) const {
  const std::optional<Method> parsed = augment::parseMethod(method);
  KDGRID_OPTION_CHECK(parsed.has_value(), "--method '{}': expected backtranslate, perturb or fgsm",
                      method);
  KDGRID_OPTION_CHECK(!input.empty(), "--input must name a directory");
  KDGRID_OPTION_CHECK(!out.empty(), "--out must name a directory");
  auto given = [&](const char* name) { return vm.count(name) && !vm[name].defaulted(); };
  if (*parsed == Method::kFgsm) {
    using Names = std::span<const char* const>;
    for (Names list : {Names(kBacktranslateOptions), Names(kPerturbOptions)}) {
      for (const char* name : list) {
        KDGRID_OPTION_CHECK(!given(name), "--{} does not apply to --method fgsm", name);
      }
    }
    KDGRID_OPTION_CHECK(!fgsm.checkpoint.empty(), "--method fgsm needs --checkpoint CKPT");
    KDGRID_OPTION_CHECK(fgsm.epsilon > 0 && fgsm.epsilon <= 1e4, "--epsilon {} is outside (0, 1e4]",
                        fgsm.epsilon);
    KDGRID_OPTION_CHECK(fgsm.max_flips >= 1 && fgsm.max_flips <= 1000000,
                        "--max-flips {} is outside [1, 1000000]", fgsm.max_flips);
    return *parsed;
  }
  for (const char* name : kFgsmOptions) {
    KDGRID_OPTION_CHECK(!given(name), "--{} applies to --method fgsm, not --method {}", name,
                        method);
  }
  const bool bt = *parsed == Method::kBacktranslate;
  const std::span<const char* const> other =
      bt ? std::span<const char* const>(kPerturbOptions) : kBacktranslateOptions;
  for (const char* name : other) {
    KDGRID_OPTION_CHECK(!given(name), "--{} applies to --method {}, not --method {}", name,
                        bt ? "perturb" : "backtranslate", method);
  }
  if (bt) {
    KDGRID_OPTION_CHECK(!(given("bt-command") && given("bt-pivots")),
                        "--bt-pivots and --bt-command exclude each other (--bt-command is the "
                        "whole round trip)");
    KDGRID_OPTION_CHECK(!vm.count("bt-command") || !bt_command.empty(),
                        "--bt-command must not be empty");
    KDGRID_OPTION_CHECK(bt_lookahead_mb >= 0 && bt_lookahead_mb <= 1e6,
                        "--bt-lookahead-mb {} is outside [0, 1e6]", bt_lookahead_mb);
    KDGRID_OPTION_CHECK(isLanguageCode(bt_lang),
                        "--bt-lang '{}' is not an Apertium language code (letters and '_')",
                        bt_lang);
    std::set<std::string> seen;
    for (const std::string& pivot : pivots()) {
      KDGRID_OPTION_CHECK(isLanguageCode(pivot) && pivot != bt_lang,
                          "--bt-pivots '{}': '{}' is not an Apertium language code other than "
                          "--bt-lang (letters and '_', comma-separated)",
                          bt_pivots, pivot);
      KDGRID_OPTION_CHECK(seen.insert(pivot).second, "--bt-pivots '{}': '{}' given twice",
                          bt_pivots, pivot);
    }
  } else {
    const std::pair<const char*, double> named[] = {
        {"eda-sr", rates.sr}, {"eda-ri", rates.ri}, {"eda-rs", rates.rs}, {"eda-rd", rates.rd}};
    for (const auto& [name, rate] : named) {
      KDGRID_OPTION_CHECK(rate >= 0 && rate <= 0.5, "--{} {} is outside [0, 0.5]", name, rate);
    }
    KDGRID_OPTION_CHECK(rates.sr + rates.ri + rates.rs + rates.rd > 0,
                        "--eda-sr, --eda-ri, --eda-rs and --eda-rd are all 0: nothing to do");
    KDGRID_OPTION_CHECK(num_aug >= 1 && num_aug <= 1000, "--num-aug {} is outside [1, 1000]",
                        num_aug);
  }
  return *parsed;
}

namespace {

void runFgsm(AugmentConfig& opt) {
  opt.fgsm.input = opt.input;
  opt.fgsm.out = opt.out;
  opt.fgsm.seed = opt.seed;
  const augment::FgsmSummary s = augment::runFgsmAugmentation(opt.fgsm);
  if (worldRank() == 0) {
    const double attack = std::max(s.attack_seconds, 1e-9);
    std::printf(
        "augment: fgsm: %llu windows -> %llu shards in %s; %llu flips (%.2f per window, %llu "
        "verified by a forward pass); mean loss %.4f -> %.4f nats\n",
        static_cast<unsigned long long>(s.windows),
        static_cast<unsigned long long>(s.shards_written), opt.out.c_str(),
        static_cast<unsigned long long>(s.flips),
        static_cast<double>(s.flips) / std::max<double>(1, static_cast<double>(s.windows)),
        static_cast<unsigned long long>(s.tried), s.clean_loss, s.adv_loss);
    std::printf(
        "augment: fgsm: %.2f sequences/s on %d rank%s (%.2f s attacking on the slowest "
        "rank, %.2f s in all)\n",
        static_cast<double>(s.windows) / attack, worldSize(), worldSize() == 1 ? "" : "s",
        s.attack_seconds, s.seconds);
    std::fflush(stdout);
  }
}

}  // namespace

void runAugmentation(AugmentConfig& opt, Method method) {
  if (method == Method::kFgsm) return runFgsm(opt);

  augment::AugmentRunConfig run;
  run.input = opt.input;
  run.out = opt.out;
  run.method = method;
  run.params = {{"augment_method", std::string(augment::methodName(method))},
                {"augment_input", opt.input},
                {"seed", fmt::format("{}", opt.seed)}};
  std::function<std::unique_ptr<augment::TextAugmenter>()> make;
  if (method == Method::kBacktranslate) {
    augment::BacktranslateConfig bt;
    bt.command = opt.bt_command;
    bt.lang = opt.bt_lang;
    bt.apertium_dir = opt.apertium_dir;
    bt.lookahead_bytes = static_cast<uint64_t>(opt.bt_lookahead_mb * 1e6);
    bt.pivots = bt.command.empty() ? opt.pivots() : std::vector<std::string>{};
    agreeOnOutcome([&] { augment::checkBacktranslate(bt); });
    if (bt.command.empty()) {
      run.params["bt_translator"] = "apertium";
      run.params["bt_pivots"] = opt.bt_pivots;
      run.params["bt_lang"] = bt.lang;
    } else {
      run.params["bt_translator"] = "command";
      run.params["bt_command"] = bt.command;
    }
    make = [bt] { return augment::makeBacktranslator(bt); };
  } else {
    augment::PerturbConfig eda;
    eda.rates = opt.rates;
    eda.num_aug = opt.num_aug;
    eda.seed = opt.seed;
    eda.wordnet_dir = opt.wordnet_dir;
    agreeOnOutcome([&] { augment::WordNet::checkFiles(eda.wordnet_dir); });
    run.params["eda_sr"] = fmt::format("{}", eda.rates.sr);
    run.params["eda_ri"] = fmt::format("{}", eda.rates.ri);
    run.params["eda_rs"] = fmt::format("{}", eda.rates.rs);
    run.params["eda_rd"] = fmt::format("{}", eda.rates.rd);
    run.params["num_aug"] = fmt::format("{}", eda.num_aug);
    make = [eda] { return augment::makePerturber(eda); };
  }

  const augment::AugmentSummary summary = augment::runTextAugmentation(run, make);
  if (worldRank() == 0) {
    const augment::AugmentStats& s = summary.stats;
    const double seconds = std::max(summary.seconds, 1e-9);
    std::printf(
        "augment: %s: %llu shards, %llu documents -> %llu documents (dropped: %llu identical to "
        "their source, %llu duplicate) in %llu shards -> %s\n",
        std::string(augment::methodName(method)).c_str(), static_cast<unsigned long long>(s.shards),
        static_cast<unsigned long long>(s.docs), static_cast<unsigned long long>(s.written),
        static_cast<unsigned long long>(s.identical), static_cast<unsigned long long>(s.duplicate),
        static_cast<unsigned long long>(s.shards_written), opt.out.c_str());
    std::printf("augment: %llu sentences in %.2f s = %.0f sentences/s on %d rank%s\n",
                static_cast<unsigned long long>(s.segments), seconds,
                static_cast<double>(s.segments) / seconds, worldSize(),
                worldSize() == 1 ? "" : "s");
    std::fflush(stdout);
  }
}

}  // namespace kdgrid
