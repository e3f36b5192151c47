// Bad checkpoints and bad flags through the real binary (TANDEM_CLI_BINARY: the tandem of the same build, which
// `make test` builds with ASan + UBSan in build-asan/): each gives a clear message naming the file / tensor /
// key, exit code 1, and no sanitizer report.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fixtures.h"
#include "common/temp_dir.h"
#include "common/run_cli.h"

using namespace tandem;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::filesystem::path cli_binary() { return TANDEM_CLI_BINARY; }

using Result = test::CliResult;
Result run(const std::string& args) { return test::run_tandem(args); }

class CliErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(cli_binary()))
        << cli_binary() << " is missing: build the tandem target of this build folder";
  }
  /// Copies fixture glm-a, lets `edit` change its tensors, runs generate on it.
  Result generate_with(const std::function<void(const loader::TensorInfo&, loader::SafetensorsWriter&)>& edit,
                       const std::function<void(const std::filesystem::path&)>& after = {}) {
    test::copy_checkpoint(test::fixture_model("glm-a"), tmp_.path(), edit);
    if (after) after(tmp_.path());
    return run("generate --model " + tmp_.path().string() + " --prompt-ids 1,2,3 --max-tokens 2");
  }
  void expect_clean_failure(const Result& r, const std::vector<std::string>& must_contain) {
    EXPECT_EQ(r.code, 1) << r.out;
    for (const auto& s : must_contain) EXPECT_THAT(r.out, HasSubstr(s));
    EXPECT_THAT(r.out, Not(HasSubstr("Sanitizer")));
    EXPECT_THAT(r.out, Not(HasSubstr("runtime error")));
  }
  test::TempDir tmp_;
};

auto keep = [](const loader::TensorInfo& t, loader::SafetensorsWriter& w) { w.add(t.name, t.view()); };

TEST_F(CliErrors, MissingTensor) {
  expect_clean_failure(generate_with([](const loader::TensorInfo& t, loader::SafetensorsWriter& w) {
                         if (t.name != "model.layers.1.self_attn.k_proj.weight") w.add(t.name, t.view());
                       }),
                       {"model.layers.1.self_attn.k_proj.weight", "missing"});
}

TEST_F(CliErrors, WrongShape) {
  expect_clean_failure(generate_with([](const loader::TensorInfo& t, loader::SafetensorsWriter& w) {
                         if (t.name == "model.norm.weight") {
                           std::vector<uint16_t> v(t.shape.numel() - 1, 0x3f80);
                           w.add(t.name, t.dtype, {t.shape[0] - 1}, v.data());
                         } else {
                           w.add(t.name, t.view());
                         }
                       }),
                       {"model.norm.weight", "[144]", "[143]"});
}

TEST_F(CliErrors, WrongDtype) {
  expect_clean_failure(generate_with([](const loader::TensorInfo& t, loader::SafetensorsWriter& w) {
                         if (t.name == "model.layers.0.mlp.up_proj.weight") {
                           std::vector<int32_t> v(t.shape.numel(), 0);
                           w.add(t.name, DType::kI32, t.shape, v.data());
                         } else {
                           w.add(t.name, t.view());
                         }
                       }),
                       {"model.layers.0.mlp.up_proj.weight", "I32"});
}

TEST_F(CliErrors, TruncatedFile) {
  expect_clean_failure(generate_with(keep,
                                     [](const std::filesystem::path& dir) {
                                       const auto f = dir / "model.safetensors";
                                       std::filesystem::resize_file(f, std::filesystem::file_size(f) - 1000);
                                     }),
                       {"model.safetensors"});
}

TEST_F(CliErrors, UnknownArchitecture) {
  expect_clean_failure(generate_with(keep,
                                     [](const std::filesystem::path& dir) {
                                       std::ifstream in(dir / "config.json");
                                       auto j = nlohmann::json::parse(in);
                                       j["architectures"] = {"MixtralForCausalLM"};
                                       std::ofstream(dir / "config.json") << j.dump();
                                     }),
                       {"MixtralForCausalLM", "architecture"});
}

TEST_F(CliErrors, UnsupportedConfigValue) {
  expect_clean_failure(generate_with(keep,
                                     [](const std::filesystem::path& dir) {
                                       std::ifstream in(dir / "config.json");
                                       auto j = nlohmann::json::parse(in);
                                       j["hidden_act"] = "gelu";
                                       std::ofstream(dir / "config.json") << j.dump();
                                     }),
                       {"hidden_act", "gelu"});
}

TEST_F(CliErrors, UnsupportedQuantization) {
  expect_clean_failure(generate_with(keep,
                                     [](const std::filesystem::path& dir) {
                                       std::ifstream in(dir / "config.json");
                                       auto j = nlohmann::json::parse(in);
                                       j["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}};
                                       std::ofstream(dir / "config.json") << j.dump();
                                     }),
                       {"awq"});
}

TEST_F(CliErrors, BadFlags) {
  const auto model = test::fixture_model("glm-a").string();
  expect_clean_failure(run("generate --model " + model + " --prompt-ids 1,x,3"), {"--prompt-ids", "'x'"});
  expect_clean_failure(run("generate --model " + model + " --prompt-ids 1,2 --speculative-algorithm NEXTN "
                           "--speculative-eagle-topk 4"),
                       {"--speculative-eagle-topk"});
  expect_clean_failure(run("generate --model " + model + " --prompt-ids 99999"), {"99999", "vocabulary"});
  expect_clean_failure(run("generate --model /nonexistent/dir --prompt-ids 1"), {"/nonexistent/dir"});
}

}  // namespace
