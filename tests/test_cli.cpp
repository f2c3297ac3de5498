// Option parsing: flags win over --config, unknown options are named, dumpIni round-trips;
// parsedOptions tells given options from defaults; INI values are read and replaced; what
// `kdgrid version` claims.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "src/core/options.h"
#include "src/distill/kd_config.h"
#include "src/train/config.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

struct Demo {
  int steps = 0;
  double lr = 0;
  std::vector<std::string> input;
  bool no_resume = false;
};

po::options_description demoOptions(Demo& d) {
  po::options_description o("demo");
  o.add_options()("steps", po::value(&d.steps)->default_value(10), "steps")(
      "lr", po::value(&d.lr)->default_value(3e-4), "learning rate")(
      "input", po::value(&d.input)->multitoken(), "inputs")(
      "no-resume", po::bool_switch(&d.no_resume), "start fresh");
  return o;
}

// `kdgrid version` names the backends the binary has (the CPU kernels only: there is no CUDA
// code), whatever toolchains the configure step found.
TEST(Cli, VersionNamesOnlyTheCpuBackend) {
  std::string out;
  ASSERT_EQ(test::runCommand(test::kdgridBinary() + " version", &out), 0) << out;
  EXPECT_NE(out.find("backends: cpu;"), std::string::npos) << out;
  EXPECT_EQ(out.find("CUDA"), std::string::npos) << out;
  EXPECT_EQ(out.find("cuda"), std::string::npos) << out;
}

TEST(Cli, FlagsWinOverConfigFile) {
  test::TempDir dir;
  std::ofstream(dir / "a.ini") << "steps = 7\nlr = 0.5\ninput = x\ninput = y\n";
  Demo d;
  auto o = demoOptions(d);
  po::variables_map vm;
  ASSERT_TRUE(parseOptions({"demo", "", {"--config", dir / "a.ini", "--steps", "3"}}, o, vm));
  EXPECT_EQ(d.steps, 3);
  EXPECT_DOUBLE_EQ(d.lr, 0.5);
  EXPECT_EQ(d.input, (std::vector<std::string>{"x", "y"}));
}

TEST(Cli, UnknownOptionIsNamed) {
  Demo d;
  auto o = demoOptions(d);
  po::variables_map vm;
  try {
    parseOptions({"demo", "", {"--stepz", "3"}}, o, vm);
    FAIL() << "no error";
  } catch (const OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("stepz"), std::string::npos) << e.what();
    EXPECT_EQ(e.exitCode(), kExitUsage);
  }
}

TEST(Cli, UnknownOptionInConfigFileIsNamed) {
  test::TempDir dir;
  std::ofstream(dir / "b.ini") << "stepz = 3\n";
  Demo d;
  auto o = demoOptions(d);
  po::variables_map vm;
  try {
    parseOptions({"demo", "", {"--config", dir / "b.ini"}}, o, vm);
    FAIL() << "no error";
  } catch (const OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("stepz"), std::string::npos) << e.what();
  }
}

TEST(Cli, BadValueIsNamed) {
  Demo d;
  auto o = demoOptions(d);
  po::variables_map vm;
  try {
    parseOptions({"demo", "", {"--steps", "many"}}, o, vm);
    FAIL() << "no error";
  } catch (const OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("steps"), std::string::npos) << e.what();
  }
}

TEST(Cli, DumpIniReadsBack) {
  test::TempDir dir;
  Demo a;
  auto oa = demoOptions(a);
  po::variables_map vma;
  ASSERT_TRUE(parseOptions({"demo", "", {"--steps", "42", "--input", "p", "q", "--no-resume"}}, oa, vma));
  std::ofstream(dir / "dump.ini") << dumpIni(oa, vma);
  Demo b;
  auto ob = demoOptions(b);
  po::variables_map vmb;
  ASSERT_TRUE(parseOptions({"demo", "", {"--config", dir / "dump.ini"}}, ob, vmb));
  EXPECT_EQ(b.steps, 42);
  EXPECT_DOUBLE_EQ(b.lr, a.lr);
  EXPECT_EQ(b.input, a.input);
  EXPECT_TRUE(b.no_resume);
}

TEST(Cli, ParsedOptionsTellGivenFromDefaults) {
  test::TempDir dir;
  std::ofstream(dir / "c.ini") << "lr = 0.5\n";
  Demo d;
  auto o = demoOptions(d);
  po::variables_map vm;
  ASSERT_TRUE(parseOptions({"demo", "", {"--config", dir / "c.ini", "--input", "p"}}, o, vm));
  const ParsedOptions parsed = parsedOptions(o, vm);
  EXPECT_EQ(parsed.names, (std::set<std::string>{"steps", "lr", "input", "no-resume"}));
  // lr from --config counts as given; steps (default) and no-resume (switch left off) do not.
  EXPECT_EQ(parsed.given, (std::set<std::string>{"lr", "input"}));
  EXPECT_EQ(parsed.ini, dumpIni(o, vm));
}

TEST(Cli, IniValuesAreReadAndReplaced) {
  std::string ini = "steps = 42\nlr = 0.0003\ninput = p\ninput = q\n# seed (unset)\n";
  EXPECT_EQ(iniValues(ini, "steps"), std::vector<std::string>{"42"});
  EXPECT_EQ(iniValues(ini, "input"), (std::vector<std::string>{"p", "q"}));
  EXPECT_TRUE(iniValues(ini, "seed").empty());
  EXPECT_TRUE(iniValues(ini, "step").empty());
  setIniValue(ini, "steps", "7");
  setIniValue(ini, "seed", "3");   // its "(unset)" line
  setIniValue(ini, "input", "r");  // one line instead of two
  setIniValue(ini, "d-model", "64");  // appended
  EXPECT_EQ(ini, "steps = 7\nlr = 0.0003\ninput = r\nseed = 3\nd-model = 64\n");
}

// --precision, --recompute, --on-nan and --kd-loss are typed at parse time and written back
// as the words a person gives (config.ini and the checkpoints' config attribute).
struct EnumDemo {
  TrainConfig train;
  DistillConfig distill;
  po::options_description options;
  EnumDemo() { options.add(trainOptions(train)).add(distillOptions(distill)); }
};

TEST(Cli, EnumOptionsParseAndDumpAsWords) {
  test::TempDir dir;
  EnumDemo a;
  po::variables_map vma;
  ASSERT_TRUE(parseOptions({"train", "", {"--precision", "bf16", "--recompute", "full", "--on-nan",
                                          "skip", "--kd-loss", "jsd"}},
                           a.options, vma));
  EXPECT_EQ(a.train.precision, DType::kBF16);
  EXPECT_EQ(a.train.recompute, Recompute::kFull);
  EXPECT_EQ(a.train.on_nan, OnNan::kSkip);
  EXPECT_EQ(a.distill.loss, cpu::Divergence::kJsd);
  const std::string ini = dumpIni(a.options, vma);
  for (const char* line : {"\nprecision = bf16\n", "\nrecompute = full\n", "\non-nan = skip\n",
                           "\nkd-loss = jsd\n"}) {
    EXPECT_NE(ini.find(line), std::string::npos) << line << " not in\n" << ini;
  }
  std::ofstream(dir / "dump.ini") << ini;
  EnumDemo b;
  po::variables_map vmb;
  ASSERT_TRUE(parseOptions({"train", "", {"--config", dir / "dump.ini"}}, b.options, vmb));
  EXPECT_EQ(b.train.precision, DType::kBF16);
  EXPECT_EQ(b.train.recompute, Recompute::kFull);
  EXPECT_EQ(b.train.on_nan, OnNan::kSkip);
  EXPECT_EQ(b.distill.loss, cpu::Divergence::kJsd);

  EnumDemo defaults;
  po::variables_map vmd;
  ASSERT_TRUE(parseOptions({"train", "", {}}, defaults.options, vmd));
  EXPECT_NE(dumpIni(defaults.options, vmd).find("\nprecision = fp32\n"), std::string::npos);
}

TEST(Cli, BadEnumWordIsAParseErrorNamingTheOption) {
  const std::pair<const char*, const char*> cases[] = {{"--precision", "fp8"},
                                                       {"--recompute", "some"},
                                                       {"--on-nan", "maybe"},
                                                       {"--kd-loss", "kl"}};
  for (const auto& [option, word] : cases) {
    EnumDemo d;
    po::variables_map vm;
    try {
      parseOptions({"train", "", {option, word}}, d.options, vm);
      ADD_FAILURE() << option << " " << word << ": no error";
    } catch (const OptionError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(option), std::string::npos) << what;
      EXPECT_NE(what.find(word), std::string::npos) << what;
      EXPECT_NE(what.find("valid: "), std::string::npos) << what;
      EXPECT_EQ(e.exitCode(), kExitUsage);
    }
  }
}

}  // namespace
}  // namespace kdgrid
