// `kdgrid augment`: text shards -> augmented text shards with provenance (DESIGN sections 2
// and 6). The methods live in augment/; this file holds the options, their checks and the
// dispatch. Text methods (backtranslate, perturb) run through augment/augment_run.h, which
// deals whole input shards over the ranks. fgsm (token shards, needs a checkpoint and the
// engine's input-embedding gradient) will plug in here as its own branch with its own options.
#include <algorithm>
#include <cstdio>
#include <set>
#include <span>

#include "augment/augment_run.h"
#include "augment/backtranslate.h"
#include "augment/method.h"
#include "augment/perturb.h"
#include "augment/rank_agreement.h"
#include "augment/wordnet.h"
#include "cli/commands.h"
#include "core/log.h"

namespace kdgrid {

namespace {

using augment::Method;

struct AugmentOptions {
  std::string method;
  std::string input;
  std::string out;
  uint64_t seed = 0;
  // Back-translation.
  std::string bt_pivots = "spa,cat";
  std::string bt_command;
  std::string bt_lang = "eng";
  std::string apertium_dir = augment::kApertiumDir;
  double bt_lookahead_mb = 64;
  // Perturbation.
  augment::EdaRates rates;
  int num_aug = 4;
  std::string wordnet_dir = augment::kWordNetDir;

  static constexpr const char* kBacktranslateOptions[] = {"bt-pivots", "bt-command", "bt-lang",
                                                          "apertium-dir", "bt-lookahead-mb"};
  static constexpr const char* kPerturbOptions[] = {"eda-sr", "eda-ri",  "eda-rs",
                                                    "eda-rd", "num-aug", "wordnet-dir"};

  po::options_description describe() {
    po::options_description common("Augment");
    // clang-format off
    common.add_options()
        ("method", po::value(&method)->required()->value_name("NAME"),
         "backtranslate | perturb (fgsm: not in this build yet)")
        ("input", po::value(&input)->required()->value_name("DIR"),
         "directory of kdgrid-text shards (e.g. prepare's OUT/train)")
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
         po::value(&bt_lookahead_mb)->default_value(bt_lookahead_mb)->value_name("MB"),
         "text sent to a translator ahead of the output awaited; must exceed what the translator "
         "buffers (memory: about this much per rank, plus one shard)");
    po::options_description eda("Perturbation (--method perturb)");
    eda.add_options()
        ("eda-sr", po::value(&rates.sr)->default_value(rates.sr)->value_name("F"),
         "synonym replacement: fraction of words replaced, [0, 0.5]")
        ("eda-ri", po::value(&rates.ri)->default_value(rates.ri)->value_name("F"),
         "random insertion: synonyms inserted per word, [0, 0.5]")
        ("eda-rs", po::value(&rates.rs)->default_value(rates.rs)->value_name("F"),
         "random swap: pairs swapped per word, [0, 0.5]")
        ("eda-rd", po::value(&rates.rd)->default_value(rates.rd)->value_name("F"),
         "random deletion: fraction of words deleted, [0, 0.5]")
        ("num-aug", po::value(&num_aug)->default_value(num_aug)->value_name("N"),
         "variants per document")
        ("wordnet-dir", po::value(&wordnet_dir)->default_value(wordnet_dir)->value_name("DIR"),
         "WordNet 3.0 database (Debian package wordnet-base)");
    // clang-format on
    common.add(bt).add(eda);
    return common;
  }

  std::vector<std::string> pivots() const {
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

  static bool isLanguageCode(const std::string& code) {
    return !code.empty() && std::all_of(code.begin(), code.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    });
  }

  Method validate(const po::variables_map& vm) const {
    const std::optional<Method> parsed = augment::parseMethod(method);
    KDGRID_OPTION_CHECK(parsed && *parsed != Method::kFgsm, "--method '{}': {}", method,
                        parsed ? "fgsm is not available in this build yet (it needs the "
                                 "engine's input-embedding gradient); use backtranslate or perturb"
                               : "expected backtranslate or perturb");
    KDGRID_OPTION_CHECK(!input.empty(), "--input must name a directory");
    KDGRID_OPTION_CHECK(!out.empty(), "--out must name a directory");
    auto given = [&](const char* name) { return vm.count(name) && !vm[name].defaulted(); };
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
};

}  // namespace

int runAugment(const CommandLine& cmd) {
  AugmentOptions opt;
  po::variables_map vm;
  if (!parseOptions(cmd, opt.describe(), vm)) return kExitOk;
  const Method method = opt.validate(vm);

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
    augment::agreeOnOutcome([&] { augment::checkBacktranslate(bt); });
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
    augment::agreeOnOutcome([&] { augment::WordNet::checkFiles(eda.wordnet_dir); });
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
  return kExitOk;
}

}  // namespace kdgrid
