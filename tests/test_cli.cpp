// Option parsing: flags win over --config, unknown options are named, dumpIni round-trips;
// what `kdgrid version` claims.
#include <gtest/gtest.h>

#include <fstream>

#include "src/core/options.h"
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

}  // namespace
}  // namespace kdgrid
