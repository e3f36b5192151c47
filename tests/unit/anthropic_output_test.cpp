// The Anthropic response assembly (server/anthropic_output.h) without a model: the parser corpus of
// tests/fixtures/parsers/ (GLM-4.5 tool calls with thinking among them) is fed as scripted text deltas of 1,
// 2 and 3 characters and of seeded random sizes, as the engine delivers them (one token per step, or a whole
// accepted MTP run). The stream events are accumulated the way the Anthropic SDK's MessageStream does,
// checking Anthropic's event shapes and block indexes on the way; the result must equal the non-streamed
// content of the same text, and that content must say what the OpenAI route's message of the same text says.
#include "server/anthropic_output.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "parsers/tool_call_id.h"
#include "common/parser_corpus.h"
#include "server/chat_output.h"

namespace tandem::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using OJson = nlohmann::ordered_json;

using Case = test::ParserCase;

std::vector<Case> load_corpus() { return test::load_parser_corpus(); }

/// GLM-4.5 outputs with thinking before tool calls, the agent case, beyond the corpus's: parallel calls, text
/// between thinking and a call, typed, nested and unicode arguments, a call without arguments followed by
/// text, and outputs cut off by max_tokens inside a call and inside thinking.
std::vector<Case> glm45_thinking_calls() {
  std::ifstream in(test::parser_corpus_dir() / "glm45.json");
  const json doc = json::parse(in);
  const ChatOutputOptions glm = {.tool_parser = "glm45",
                                 .reasoning_parser = "glm45",
                                 .schemas = parsers::ToolSchemas::from_openai_tools(doc.at("tools"))};
  const std::vector<std::pair<std::string, std::string>> texts = {
      {"parallel_calls",
       "\n<think>Two cities, two calls.</think>\n<tool_call>get_weather\n<arg_key>location</arg_key>\n"
       "<arg_value>Paris</arg_value>\n<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>\n"
       "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>Oslo</arg_value>\n</tool_call>"},
      {"text_then_typed_call",
       "\n<think>Search first.</think>\nLet me search.\n<tool_call>search\n<arg_key>query</arg_key>\n"
       "<arg_value>naïve café ☕ \"quotes\"</arg_value>\n<arg_key>filters</arg_key>\n"
       "<arg_value>{\"year\": 2024, \"tags\": [\"a\", \"b\"]}</arg_value>\n<arg_key>limit</arg_key>\n"
       "<arg_value>5</arg_value>\n<arg_key>exact</arg_key>\n<arg_value>true</arg_value>\n</tool_call>"},
      {"no_arguments_then_text",
       "\n<think>List them.</think>\n<tool_call>list_files\n</tool_call>\nDone listing."},
      {"cut_in_a_call",
       "\n<think>Write it.</think>\n<tool_call>write_file\n<arg_key>path</arg_key>\n<arg_value>/tmp/a.txt"
       "</arg_value>\n<arg_key>content</arg_key>\n<arg_value>line one\nline tw"},
      {"cut_in_thinking", "\n<think>Still thinking about the weath"},
  };
  std::vector<Case> cases;
  for (const auto& [name, text] : texts)
    cases.push_back({.id = "glm45-thinking/" + name, .text = text, .options = glm});
  return cases;
}

const std::vector<Case>& corpus() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> all = load_corpus();
    for (Case& c : glm45_thinking_calls()) all.push_back(std::move(c));
    return all;
  }();
  return cases;
}

const std::string kSeed = "msg_unit";

/// What the Anthropic SDK's MessageStream builds from the events, checking each event's shape: blocks start
/// at the next index with an empty block of their type, deltas go to the open block and match its type, a
/// stop closes the open block, one block is open at a time; a tool_use block's input is its partial_json
/// fragments concatenated, which must parse to an object when the block stops.
class Accumulator {
 public:
  void add(const OJson& e, const std::string& where) {
    ASSERT_TRUE(e.is_object() && e.contains("type") && e["type"].is_string()) << where << ": " << e;
    const std::string type = e["type"];
    ASSERT_TRUE(e.contains("index") && e["index"].is_number_unsigned()) << where << ": " << e;
    const size_t index = e["index"];
    if (type == "content_block_start") {
      ASSERT_EQ(e.size(), 3u) << where << ": " << e;
      ASSERT_FALSE(open_) << where << ": a block starts while block " << blocks_.size() - 1 << " is open";
      ASSERT_EQ(index, blocks_.size()) << where << ": blocks must be numbered 0, 1, ...: " << e;
      const OJson& cb = e.at("content_block");
      const std::string kind = cb.at("type");
      if (kind == "thinking") {
        ASSERT_EQ(cb, OJson({{"type", "thinking"}, {"thinking", ""}, {"signature", ""}})) << where;
      } else if (kind == "text") {
        ASSERT_EQ(cb, OJson({{"type", "text"}, {"text", ""}})) << where;
      } else {
        ASSERT_EQ(kind, "tool_use") << where << ": " << e;
        ASSERT_EQ(cb.size(), 4u) << where << ": " << e;
        ASSERT_TRUE(cb.at("id").is_string() && cb["id"].get<std::string>().starts_with("toolu_")) << where;
        ASSERT_EQ(cb["id"], anthropic_tool_id(parsers::tool_call_id(kSeed, calls_))) << where;
        ASSERT_TRUE(cb.at("name").is_string() && !cb["name"].get<std::string>().empty()) << where;
        ASSERT_EQ(cb.at("input"), OJson::object()) << where;
        ++calls_;
      }
      blocks_.push_back(cb);
      json_.emplace_back();
      open_ = true;
      return;
    }
    ASSERT_TRUE(open_) << where << ": " << type << " without an open block";
    ASSERT_EQ(index + 1, blocks_.size()) << where << ": " << type << " for a block that is not open: " << e;
    OJson& block = blocks_.back();
    if (type == "content_block_stop") {
      ASSERT_EQ(e.size(), 2u) << where << ": " << e;
      open_ = false;
      if (block["type"] == "tool_use") {
        const std::string& text = json_.back();
        if (!text.empty()) {
          OJson input;
          ASSERT_NO_THROW(input = OJson::parse(text))
              << where << ": partial_json does not add up to JSON: " << text;
          ASSERT_TRUE(input.is_object()) << where << ": " << text;
          block["input"] = input;
        }
      }
      return;
    }
    ASSERT_EQ(type, "content_block_delta") << where << ": " << e;
    ASSERT_EQ(e.size(), 3u) << where << ": " << e;
    const OJson& d = e.at("delta");
    ASSERT_EQ(d.size(), 2u) << where << ": " << e;
    const std::string dt = d.at("type");
    auto piece = [&](const char* key) {
      EXPECT_TRUE(d.at(key).is_string() && !d[key].get<std::string>().empty())
          << where << ": empty delta " << e;
      return d[key].get<std::string>();
    };
    if (block["type"] == "thinking") {
      ASSERT_EQ(dt, "thinking_delta") << where << ": " << e;
      block["thinking"] = block["thinking"].get<std::string>() + piece("thinking");
    } else if (block["type"] == "text") {
      ASSERT_EQ(dt, "text_delta") << where << ": " << e;
      block["text"] = block["text"].get<std::string>() + piece("text");
    } else {
      ASSERT_EQ(dt, "input_json_delta") << where << ": " << e;
      json_.back() += piece("partial_json");
    }
  }

  OJson content() const {
    EXPECT_FALSE(open_) << "the stream ended with block " << blocks_.size() - 1 << " open";
    OJson out = OJson::array();
    for (const OJson& b : blocks_) out.push_back(b);
    return out;
  }

 private:
  std::vector<OJson> blocks_;
  std::vector<std::string> json_;  // per block: the partial_json so far
  bool open_ = false;
  int calls_ = 0;
};

// Byte offsets of character boundaries, 0 and text.size() included.
std::vector<size_t> char_boundaries(const std::string& text) {
  std::vector<size_t> b;
  for (size_t i = 0; i < text.size(); ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) b.push_back(i);
  b.push_back(text.size());
  return b;
}

/// Streams text[cuts[i], cuts[i+1]); with `empty_last` the final push is an empty piece (a generation that
/// ends on a token with no text, such as eos). Returns the accumulated content.
OJson stream(const Case& c, const std::vector<size_t>& cuts, bool empty_last, const std::string& how) {
  AnthropicContent out(c.options, kSeed);
  Accumulator acc;
  const size_t pieces = cuts.size() - 1;
  for (size_t i = 0; i < pieces; ++i) {
    const bool last = !empty_last && i + 1 == pieces;
    for (const OJson& e : out.push(std::string_view(c.text).substr(cuts[i], cuts[i + 1] - cuts[i]), last))
      acc.add(e, how + ", piece " + std::to_string(i));
  }
  if (empty_last) {
    for (const OJson& e : out.push("", true)) acc.add(e, how + ", last");
  }
  EXPECT_TRUE(out.push("more", true).empty()) << how << ": a push after the last one";
  const OJson content = acc.content();
  EXPECT_EQ(content.dump(), out.content().dump()) << how << ": the events do not add up to the content";
  return content;
}

OJson whole(const Case& c) {
  AnthropicContent out(c.options, kSeed);
  (void)out.push(c.text, true);
  return out.content();
}

TEST(AnthropicContent, SaysWhatTheOpenAiMessageOfTheSameTextSays) {
  ASSERT_GE(corpus().size(), 90u) << "the parser corpus is missing cases";
  for (const Case& c : corpus()) {
    SCOPED_TRACE(c.id);
    const OJson content = whole(c);
    ChatChoiceOutput openai(c.options, kSeed);
    (void)openai.push(c.text, true);
    const json m = openai.message();
    std::string text, thinking;
    json calls = json::array();
    std::string kinds;  // t(hinking), x (text), u (tool_use), in order
    for (const OJson& b : content) {
      if (b["type"] == "thinking") {
        kinds += 't';
        thinking += b["thinking"].get<std::string>();
        EXPECT_EQ(b.size(), 3u);
        EXPECT_EQ(b["signature"], "");
      } else if (b["type"] == "text") {
        kinds += 'x';
        text += b["text"].get<std::string>();
        EXPECT_EQ(b.size(), 2u);
      } else {
        kinds += 'u';
        ASSERT_EQ(b["type"], "tool_use");
        ASSERT_TRUE(b["input"].is_object()) << b;
        calls.push_back({{"id", b["id"]}, {"name", b["name"]}, {"input", json::parse(b["input"].dump())}});
      }
    }
    // Blocks of the same kind are never neighbours (a new block starts where the kind of text changes).
    for (size_t i = 1; i < kinds.size(); ++i)
      EXPECT_TRUE(kinds[i] != kinds[i - 1] || kinds[i] == 'u') << kinds << ": " << content.dump();
    EXPECT_EQ(text, m["content"].is_null() ? "" : m["content"].get<std::string>());
    EXPECT_EQ(thinking, m.value("reasoning_content", ""));
    const json openai_calls = m.value("tool_calls", json::array());
    ASSERT_EQ(calls.size(), openai_calls.size()) << content.dump();
    for (size_t i = 0; i < calls.size(); ++i) {
      EXPECT_EQ(calls[i]["id"], anthropic_tool_id(openai_calls[i]["id"].get<std::string>()));
      EXPECT_EQ(calls[i]["name"], openai_calls[i]["function"]["name"]);
      const std::string args = openai_calls[i]["function"]["arguments"];
      EXPECT_EQ(calls[i]["input"], json::parse(args));
      // ... and in the key order the model wrote them.
      EXPECT_EQ(content[kinds.find('u') + i]["input"].dump(), OJson::parse(args).dump());
    }
  }
}

TEST(AnthropicContent, StreamedEqualsNonStreamedForEveryDeltaSize) {
  int glm45_calls_with_thinking = 0;
  for (const Case& c : corpus()) {
    SCOPED_TRACE(c.id);
    const OJson expected = whole(c);
    bool thinking = false, call = false;
    for (const OJson& b : expected) {
      thinking = thinking || b["type"] == "thinking";
      call = call || b["type"] == "tool_use";
    }
    glm45_calls_with_thinking += c.options.tool_parser == "glm45" && thinking && call;
    const std::vector<size_t> chars = char_boundaries(c.text);
    auto check = [&](const std::vector<size_t>& cuts, const std::string& how) {
      for (bool empty_last : {false, true}) {
        const OJson got = stream(c, cuts, empty_last, how + (empty_last ? ", empty last piece" : ""));
        ASSERT_EQ(got.dump(), expected.dump()) << how;
      }
    };
    for (size_t step = 1; step <= 3; ++step) {
      std::vector<size_t> cuts;
      for (size_t i = 0; i < chars.size(); i += step) cuts.push_back(chars[i]);
      if (cuts.back() != c.text.size()) cuts.push_back(c.text.size());
      check(cuts, std::to_string(step) + "-character deltas");
    }
    std::mt19937 rng(20260517);
    for (int trial = 0; trial < 8; ++trial) {
      std::vector<size_t> cuts = {0};
      size_t i = 0;
      while (i + 1 < chars.size()) {
        i = std::min(chars.size() - 1, i + 1 + rng() % (trial % 2 ? 12 : 4));
        cuts.push_back(chars[i]);
      }
      check(cuts, "random deltas, trial " + std::to_string(trial));
    }
  }
  EXPECT_GE(glm45_calls_with_thinking, 5) << "the corpus must hold GLM-4.5 tool calls after thinking";
}

TEST(AnthropicContent, GlmToolCallWithThinkingIsThisEventSequence) {
  const json tools = json::parse(R"([{"type": "function", "function": {"name": "get_weather", "parameters": {
      "type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"}}}}}])");
  const ChatOutputOptions glm = {.tool_parser = "glm45",
                                 .reasoning_parser = "glm45",
                                 .schemas = parsers::ToolSchemas::from_openai_tools(tools)};
  AnthropicContent out(glm, kSeed);
  std::vector<OJson> events;
  // Pieces as an MTP step delivers them: tags split, several tags in one piece.
  for (const char* piece :
       {"\n<thi", "nk>Need the weather.</think>\nChecking.", "\n<tool_call>get_wea",
        "ther\n<arg_key>location</arg_key>\n<arg_value>Par",
        "is</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>"}) {
    for (OJson& e : out.push(piece, false)) events.push_back(std::move(e));
  }
  for (OJson& e : out.push("", true)) events.push_back(std::move(e));
  std::vector<std::string> shape;
  std::string partial_json;
  for (const OJson& e : events) {
    std::string s = e["type"].get<std::string>() + "/" + std::to_string(e["index"].get<int>());
    if (e.contains("delta")) {
      s += "/" + e["delta"]["type"].get<std::string>();
      if (e["delta"]["type"] == "input_json_delta")
        partial_json += e["delta"]["partial_json"].get<std::string>();
    }
    if (e.contains("content_block")) s += "/" + e["content_block"]["type"].get<std::string>();
    if (shape.empty() || shape.back() != s) shape.push_back(s);  // runs of deltas count once
  }
  EXPECT_EQ(shape,
            (std::vector<std::string>{"content_block_start/0/thinking",
                                      "content_block_delta/0/thinking_delta", "content_block_stop/0",
                                      "content_block_start/1/text", "content_block_delta/1/text_delta",
                                      "content_block_stop/1", "content_block_start/2/tool_use",
                                      "content_block_delta/2/input_json_delta", "content_block_stop/2"}));
  EXPECT_EQ(partial_json, R"({"location":"Paris","days":3})");
  const std::string id = anthropic_tool_id(parsers::tool_call_id(kSeed, 0));
  EXPECT_EQ(out.content().dump(),
            OJson::parse(R"([{"type": "thinking", "thinking": "Need the weather.", "signature": ""},
                             {"type": "text", "text": "Checking."},
                             {"type": "tool_use", "id": ")" +
                         id + R"(", "name": "get_weather",
                              "input": {"location": "Paris", "days": 3}}])")
                .dump());
  EXPECT_TRUE(out.called_tools());
  EXPECT_TRUE(id.starts_with("toolu_")) << id;
}

TEST(AnthropicContent, WithoutParsersTheTextIsOneTextBlock) {
  const std::string text = "<think>hm</think><tool_call>f\n</tool_call>";
  AnthropicContent out({}, kSeed);
  Accumulator acc;
  for (size_t i = 0; i < text.size(); i += 4)
    for (const OJson& e : out.push(text.substr(i, 4), i + 4 >= text.size())) acc.add(e, "piece");
  EXPECT_EQ(acc.content().dump(), OJson::array({{{"type", "text"}, {"text", text}}}).dump());
  EXPECT_FALSE(out.called_tools());
  // Nothing generated: no block at all.
  AnthropicContent empty({}, kSeed);
  EXPECT_TRUE(empty.push("", true).empty());
  EXPECT_EQ(empty.content(), OJson::array());
}

TEST(AnthropicContent, StopReasons) {
  ChoiceState s;
  s.finished = true;
  s.finish_reason = "stop";
  s.matched = 151336;  // an end-of-turn token id
  EXPECT_EQ(anthropic_stop(s, false).reason, "end_turn");
  EXPECT_TRUE(anthropic_stop(s, false).sequence.is_null());
  EXPECT_EQ(anthropic_stop(s, true).reason, "tool_use");
  s.matched = "\n\nHuman:";
  EXPECT_EQ(anthropic_stop(s, false).reason, "stop_sequence");
  EXPECT_EQ(anthropic_stop(s, false).sequence, "\n\nHuman:");
  s.matched = nullptr;
  EXPECT_EQ(anthropic_stop(s, false).reason, "end_turn");
  s.finish_reason = "length";
  EXPECT_EQ(anthropic_stop(s, false).reason, "max_tokens");
  EXPECT_EQ(anthropic_stop(s, true).reason, "max_tokens");  // a call cut off: the client must know
  EXPECT_EQ(anthropic_tool_id("call_0123abcd"), "toolu_0123abcd");
}

}  // namespace
}  // namespace tandem::server
