// Outside suite: llama.cpp's Qwen2-vocabulary tokenizer vectors (tests/fixtures/tokenizer/llama.cpp/, from
// ggml-org/llama.cpp models/ggml-vocab-qwen2.gguf.{inp,out}, provenance in its SOURCES.md) run against
// Qwen3's tokenizer.json, which shares that vocabulary. llama.cpp's convert_hf_to_gguf_update.py wrote them
// with Hugging Face AutoTokenizer (tokenizer.encode(text, add_special_tokens=False)) for Qwen/Qwen1.5-7B,
// each text written as-is followed by "\n__ggml_vocab_test__\n", so no leading-space convention applies and
// every vector must match exactly.
#include <gtest/gtest.h>

#include <sstream>

#include "tokenizer_test_support.h"

namespace tandem::tokenizer {
namespace {

TEST(LlamaCppQwen2Vectors, AllMatch) {
  const auto dir = testing::fixtures_dir() / "llama.cpp";
  const auto inp = dir / "llama.cpp-ggml-vocab-qwen2.gguf.inp";
  const auto out = dir / "llama.cpp-ggml-vocab-qwen2.gguf.out";
  ASSERT_TRUE(std::filesystem::exists(inp) && std::filesystem::exists(out))
      << "llama.cpp vectors not found at " << dir.string() << " (they are committed fixtures)";
  TANDEM_REQUIRE_OR_SKIP(testing::qwen3_installed(), testing::qwen3_missing());

  const std::string sep = "\n__ggml_vocab_test__\n";
  const std::string text = testing::read_file(inp);
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = text.find(sep, pos);
    ASSERT_NE(end, std::string::npos) << "input file does not end with the separator";
    inputs.push_back(text.substr(pos, end - pos));
    pos = end + sep.size();
  }
  std::istringstream lines(testing::read_file(out));
  std::vector<std::vector<int32_t>> expected;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    expected.emplace_back();
    for (int32_t id; ids >> id;) expected.back().push_back(id);
  }
  ASSERT_EQ(inputs.size(), expected.size());
  ASSERT_GE(inputs.size(), 40u);

  const Tokenizer& tok = testing::qwen3();
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(tok.encode(inputs[i]), expected[i]) << "vector " << i << ": " << nlohmann::json(inputs[i]).dump();
    EXPECT_EQ(tok.decode(expected[i]), inputs[i]) << "vector " << i;  // these inputs are all in NFC
  }
}

}  // namespace
}  // namespace tandem::tokenizer
