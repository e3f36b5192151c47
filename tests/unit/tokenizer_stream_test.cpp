// Streaming output: the incremental detokenizer against one-shot decode (randomized property test over token
// sequences with split multi-byte characters, special tokens and speculative multi-token steps), stop strings
// against a naive whole-text reference, and eos ids from the model configs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/eos.h"
#include "tokenizer/stop_strings.h"
#include "tokenizer_test_support.h"

namespace tandem::tokenizer {
namespace {

std::string byte_level_string(uint8_t b) { return byte_level::encode(std::string(1, static_cast<char>(b))); }

// Ids that make streaming hard: single bytes of multi-byte characters, pieces of emoji and CJK, special and
// non-special added tokens, ids without a token, and the pieces of transformers' cleanup patterns.
std::vector<int32_t> tricky_ids(const Tokenizer& tok) {
  std::vector<int32_t> ids;
  for (int b = 0x80; b < 0x100; ++b) {
    if (auto id = tok.token_to_id(byte_level_string(static_cast<uint8_t>(b)))) ids.push_back(*id);
  }
  for (const char* text : {"😀👨‍👩‍👧‍👦 中文字符 ½ é", " 's 're n't . , ! ? ' x", "<think>\n</think>", "  \n\n"}) {
    const auto enc = tok.encode(text);
    ids.insert(ids.end(), enc.begin(), enc.end());
  }
  for (int32_t id = 151643; id < tok.vocab_size(); ++id) ids.push_back(id);
  ids.push_back(tok.vocab_size() + 7);
  ids.push_back(-1);
  return ids;
}

// Single characters, so that cleanup patterns (" n't", " 're", " ' ", ...) arrive split over several pushes.
std::vector<int32_t> cleanup_pattern_ids(const Tokenizer& tok) {
  std::vector<int32_t> ids;
  for (const char* ch : {"\u0120", "\u0120", "\u0120", "n", "'", "'", "t", "s", "v", "e", "r", "m", ".", ",", "!", "?"}) {
    ids.push_back(*tok.token_to_id(ch));
  }
  return ids;
}

void check_detokenizer_property(const Tokenizer& tok, const std::vector<int32_t>& tricky, uint32_t seed,
                                int sequences) {
  std::mt19937 rng(seed);
  for (int n = 0; n < sequences; ++n) {
    std::vector<int32_t> ids(1 + rng() % 24);
    for (int32_t& id : ids) id = rng() % 3 == 0 ? static_cast<int32_t>(rng() % tok.vocab_size()) : tricky[rng() % tricky.size()];
    const bool skip = rng() % 2;
    IncrementalDetokenizer detok(tok, skip);
    std::string streamed;
    for (size_t pos = 0; pos < ids.size();) {
      const size_t k = std::min<size_t>(ids.size() - pos, 1 + rng() % 5);  // one token or a speculative run
      const std::string piece = detok.push(std::span(ids).subspan(pos, k));
      pos += k;
      ASSERT_FALSE(utf8::first_invalid(piece).has_value()) << "emitted incomplete UTF-8";
      streamed += piece;
      // Nothing is held back beyond an incomplete character (without cleanup): the stream is as far as it can be.
      if (!tok.clean_up_tokenization_spaces()) {
        std::string bytes;
        for (size_t i = 0; i < pos; ++i) {
          if (!(skip && tok.is_special(ids[i]))) bytes += tok.token_bytes(ids[i]);
        }
        if (utf8::incomplete_suffix_length(bytes) == 0) {
          ASSERT_EQ(streamed, tok.decode(std::span(ids).first(pos), skip));
        }
      }
    }
    streamed += detok.finish();
    ASSERT_EQ(streamed, tok.decode(ids, skip)) << "sequence " << n << " skip " << skip;
  }
}

TEST(IncrementalDetokenizer, AnyChunkingAddsUpToOneShotDecode) {
  TANDEM_REQUIRE_OR_SKIP(testing::qwen3_installed(), testing::qwen3_missing());
  check_detokenizer_property(testing::qwen3(), tricky_ids(testing::qwen3()), 1, 5000);
}

TEST(IncrementalDetokenizer, AnyChunkingAddsUpToOneShotDecodeWithCleanup) {
  TANDEM_REQUIRE_OR_SKIP(testing::qwen3_installed(), testing::qwen3_missing());
  const auto dir = std::filesystem::temp_directory_path() / ("tandem_tok_cleanup_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(testing::qwen3_dir() / "tokenizer.json", dir / "tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json") << R"({"clean_up_tokenization_spaces": true})";
  const auto tok = Tokenizer::from_dir(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(tok->clean_up_tokenization_spaces());
  const auto ids = tok->encode("Hello , world ! It 's fine , isn't it ? ' quoted ' we 're ok .");
  EXPECT_EQ(tok->decode(ids), "Hello, world! It's fine, isn't it?'quoted'we're ok.");
  check_detokenizer_property(*tok, tricky_ids(*tok), 2, 2000);
  check_detokenizer_property(*tok, cleanup_pattern_ids(*tok), 3, 5000);
}

TEST(CleanUpTokenization, MatchesTransformersReplacements) {
  // transformers' clean_up_tokenization applies its str.replace calls in this order.
  EXPECT_EQ(clean_up_tokenization("a . b ? c ! d , e"), "a. b? c! d, e");
  EXPECT_EQ(clean_up_tokenization("I do n't , he 's , we 've , they 're , I 'm"), "I don't, he's, we've, they're, I'm");
  EXPECT_EQ(clean_up_tokenization("x ' y"), "x'y");
  EXPECT_EQ(clean_up_tokenization("b  ' s"), "b's");  // " ' " first, then " 's" on the result
  EXPECT_EQ(clean_up_tokenization("  ."), " .");      // non-overlapping, left to right, one pass per pattern
}

// Naive reference: scan every prefix of the whole text for the earliest end of a stop string (the longest if
// several end there).
StopStringMatcher::Result reference_stop(const std::string& text, const std::vector<std::string>& stops) {
  for (size_t end = 1; end <= text.size(); ++end) {
    const std::string* best = nullptr;
    for (const auto& s : stops) {
      if (s.size() <= end && text.compare(end - s.size(), s.size(), s) == 0 && (!best || s.size() > best->size())) {
        best = &s;
      }
    }
    if (best) return {text.substr(0, end - best->size()), true, *best};
  }
  return {text, false, ""};
}

TEST(StopStringMatcher, AnyChunkingMatchesWholeTextReference) {
  std::mt19937 rng(3);
  const std::vector<std::string> alphabet = {"a", "b", " ", "\u00e9", "\n", "ab"};
  for (int n = 0; n < 20000; ++n) {
    std::vector<std::string> stops(1 + rng() % 3);
    for (auto& s : stops) {
      const size_t len = 1 + rng() % 4;
      for (size_t k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
    }
    std::string text;
    const size_t len = rng() % 30;
    for (size_t k = 0; k < len; ++k) text += alphabet[rng() % alphabet.size()];
    const auto want = reference_stop(text, stops);

    StopStringMatcher m(stops);
    std::string emitted;
    bool stopped = false;
    std::string matched;
    for (size_t pos = 0; pos < text.size() && !stopped;) {
      size_t k = std::min<size_t>(text.size() - pos, 1 + rng() % 6);
      while (pos + k < text.size() && (static_cast<uint8_t>(text[pos + k]) & 0xC0) == 0x80) ++k;  // whole chars
      const auto r = m.push(std::string_view(text).substr(pos, k));
      pos += k;
      emitted += r.emit;
      stopped = r.stopped;
      matched = r.matched;
      // What was emitted can never be taken back.
      ASSERT_EQ(want.emit.compare(0, emitted.size(), emitted), 0) << "emitted past the reference";
    }
    if (!stopped) emitted += m.finish();
    ASSERT_EQ(stopped, want.stopped) << "text " << nlohmann::json(text).dump();
    ASSERT_EQ(emitted, want.emit) << "text " << nlohmann::json(text).dump();
    ASSERT_EQ(matched, want.matched);
  }
}

TEST(StopStringMatcher, HoldsBackOnlyPossibleStopPrefixes) {
  StopStringMatcher m({"</tool_call>", "\n\nUser:"});
  auto r = m.push("Hello </to");
  EXPECT_EQ(r.emit, "Hello ");
  EXPECT_FALSE(r.stopped);
  r = m.push("p> and \n\nUs");
  EXPECT_EQ(r.emit, "</top> and ");
  r = m.push("er: hi");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emit, "");
  EXPECT_EQ(r.matched, "\n\nUser:");
  EXPECT_TRUE(m.push("more").stopped);
  EXPECT_EQ(m.push("more").emit, "");
  EXPECT_EQ(m.finish(), "");
  EXPECT_THROW(StopStringMatcher({"ok", ""}), Error);
}

TEST(EosTokenIds, MergesGenerationConfigAndConfig) {
  const nlohmann::json config = {{"eos_token_id", nlohmann::json::array({151329, 151336, 151338})}};
  const nlohmann::json generation = {{"eos_token_id", nlohmann::json::array({151329, 151336, 151338, 151337})}};
  EXPECT_EQ(eos_token_ids(config, &generation), (std::vector<int32_t>{151329, 151336, 151338, 151337}));
  EXPECT_EQ(eos_token_ids({{"eos_token_id", 151645}}, nullptr), (std::vector<int32_t>{151645}));
  const nlohmann::json qwen_generation = {{"eos_token_id", nlohmann::json::array({151645, 151643})}};
  EXPECT_EQ(eos_token_ids({{"eos_token_id", 151645}}, &qwen_generation), (std::vector<int32_t>{151645, 151643}));
  EXPECT_EQ(eos_token_ids({{"eos_token_id", nullptr}}, nullptr), std::vector<int32_t>{});
  EXPECT_THROW(eos_token_ids({{"eos_token_id", "x"}}, nullptr), Error);
  try {
    eos_token_ids({{"eos_token_id", {1, -2}}}, nullptr);
    ADD_FAILURE() << "negative id accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json.eos_token_id[1]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem::tokenizer
