// The chat response assembly (server/chat_output.h) without a model: the parser corpus of
// tests/fixtures/parsers/ (GLM-4.5, GLM-4.7, Hermes/Qwen3, Qwen3-Coder, DeepSeek-V3 and reasoning-only
// outputs) is fed as scripted text deltas of 1, 2 and 3 characters and of seeded random sizes, as the engine
// delivers them (one token per step, or a whole accepted MTP run). The stream deltas are accumulated the way
// the OpenAI SDKs do, checking OpenAI's delta shapes on the way; the result must equal the non-streamed
// message of the same text, and that message must be the fixture's expectation.
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

using Case = test::ParserCase;

std::vector<Case> load_corpus() { return test::load_parser_corpus(); }

const std::vector<Case>& corpus() {
  static const std::vector<Case> cases = load_corpus();
  return cases;
}

const std::string kSeed = "chatcmpl-unit/0";

/// What an OpenAI SDK builds from the stream deltas of one choice, checking each delta's shape: exactly one
/// of content / reasoning_content / tool_calls; a call opens with {index, id, type, function: {name,
/// arguments: ""}} at the next index, and continues with {index, function: {arguments}} of the open call
/// only.
class Accumulator {
 public:
  void add(const json& delta, const std::string& where) {
    ASSERT_TRUE(delta.is_object()) << where << ": " << delta;
    ASSERT_EQ(delta.size(), 1u) << where << ": one field per delta: " << delta;
    if (delta.contains("content")) {
      ASSERT_TRUE(delta["content"].is_string()) << where;
      ASSERT_FALSE(delta["content"].get<std::string>().empty()) << where << ": empty content delta";
      content_ += delta["content"].get<std::string>();
      return;
    }
    if (delta.contains("reasoning_content")) {
      ASSERT_TRUE(delta["reasoning_content"].is_string()) << where;
      reasoning_ += delta["reasoning_content"].get<std::string>();
      return;
    }
    ASSERT_TRUE(delta.contains("tool_calls")) << where << ": " << delta;
    const json& tcs = delta["tool_calls"];
    ASSERT_TRUE(tcs.is_array() && tcs.size() == 1u) << where << ": " << delta;
    const json& tc = tcs[0];
    ASSERT_TRUE(tc.contains("index") && tc["index"].is_number_integer()) << where << ": " << delta;
    const int index = tc["index"];
    ASSERT_TRUE(tc.contains("function") && tc["function"].is_object()) << where << ": " << delta;
    const json& fn = tc["function"];
    if (index == static_cast<int>(calls_.size())) {  // a new call
      ASSERT_EQ(tc.size(), 4u) << where << ": " << delta;
      ASSERT_TRUE(tc.contains("id") && tc["id"].is_string()) << where << ": " << delta;
      EXPECT_EQ(tc["id"], parsers::tool_call_id(kSeed, index)) << where;
      ASSERT_EQ(tc.value("type", ""), "function") << where << ": " << delta;
      ASSERT_EQ(fn.size(), 2u) << where << ": " << delta;
      ASSERT_TRUE(fn.contains("name") && fn["name"].is_string() && !fn["name"].get<std::string>().empty())
          << where << ": " << delta;
      ASSERT_EQ(fn.value("arguments", json()), "") << where << ": " << delta;
      calls_.push_back(
          {{"id", tc["id"]}, {"type", "function"}, {"function", {{"name", fn["name"]}, {"arguments", ""}}}});
      return;
    }
    ASSERT_EQ(index + 1, static_cast<int>(calls_.size()))
        << where << ": arguments for a call that is not open: " << delta;
    ASSERT_EQ(tc.size(), 2u) << where << ": " << delta;
    ASSERT_EQ(fn.size(), 1u) << where << ": " << delta;
    ASSERT_TRUE(fn.contains("arguments") && fn["arguments"].is_string()) << where << ": " << delta;
    calls_.back()["function"]["arguments"] =
        calls_.back()["function"]["arguments"].get<std::string>() + fn["arguments"].get<std::string>();
  }

  /// The message as chat_output.h defines it (content null when the choice only called tools).
  json message() const {
    json m = {{"role", "assistant"}};
    m["content"] = content_.empty() && !calls_.empty() ? json() : json(content_);
    if (!reasoning_.empty()) m["reasoning_content"] = reasoning_;
    if (!calls_.empty()) m["tool_calls"] = calls_;
    return m;
  }

 private:
  std::string content_;
  std::string reasoning_;
  json calls_ = json::array();
};

// Byte offsets of character boundaries, 0 and text.size() included.
std::vector<size_t> char_boundaries(const std::string& text) {
  std::vector<size_t> b;
  for (size_t i = 0; i < text.size(); ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) b.push_back(i);
  b.push_back(text.size());
  return b;
}

struct Streamed {
  json message;
  std::string finish_reason;
};

/// Streams text[cuts[i], cuts[i+1]); with `empty_last` the final push is an empty piece (a generation that
/// ends on a token with no text, such as eos).
Streamed stream(const Case& c, const std::vector<size_t>& cuts, bool empty_last, const std::string& reason,
                const std::string& how) {
  ChatChoiceOutput out(c.options, kSeed);
  Accumulator acc;
  const size_t pieces = cuts.size() - 1;
  for (size_t i = 0; i < pieces; ++i) {
    const bool last = !empty_last && i + 1 == pieces;
    for (const json& d : out.push(std::string_view(c.text).substr(cuts[i], cuts[i + 1] - cuts[i]), last))
      acc.add(d, how + ", piece " + std::to_string(i));
  }
  if (empty_last) {
    for (const json& d : out.push("", true)) acc.add(d, how + ", last");
  }
  EXPECT_TRUE(out.push("more", true).empty()) << how << ": a push after the last one";
  EXPECT_EQ(acc.message(), out.message()) << how << ": the stream does not add up to the choice's message";
  return {acc.message(), out.finish_reason(reason)};
}

Streamed whole(const Case& c, const std::string& reason) {
  ChatChoiceOutput out(c.options, kSeed);
  (void)out.push(c.text, true);
  return {out.message(), out.finish_reason(reason)};
}

TEST(ChatChoiceOutput, NonStreamedMessageIsTheFixtureExpectation) {
  ASSERT_GE(corpus().size(), 90u) << "the parser corpus is missing cases";
  for (const Case& c : corpus()) {
    SCOPED_TRACE(c.id);
    const json m = whole(c, "stop").message;
    const json& e = c.expect;
    const json& calls = e.at("tool_calls");
    EXPECT_EQ(m["role"], "assistant");
    if (calls.empty() || !e.at("content").get<std::string>().empty()) {
      EXPECT_EQ(m["content"], e.at("content"));
    } else {
      EXPECT_TRUE(m["content"].is_null()) << m;
    }
    EXPECT_EQ(m.value("reasoning_content", ""), e.at("reasoning_content").get<std::string>());
    ASSERT_EQ(m.contains("tool_calls"), !calls.empty()) << m;
    for (size_t i = 0; i < calls.size(); ++i) {
      const json& got = m["tool_calls"][i];
      EXPECT_EQ(got["id"], parsers::tool_call_id(kSeed, static_cast<int>(i)));
      EXPECT_EQ(got["type"], "function");
      EXPECT_EQ(got["function"]["name"], calls[i].at("name"));
      ASSERT_TRUE(got["function"]["arguments"].is_string()) << "arguments travel as JSON text";
      EXPECT_EQ(json::parse(got["function"]["arguments"].get<std::string>()), calls[i].at("arguments"))
          << got;
    }
  }
}

TEST(ChatChoiceOutput, StreamedEqualsNonStreamedForEveryDeltaSize) {
  int glm45 = 0, glm47 = 0, hermes = 0;
  for (const Case& c : corpus()) {
    SCOPED_TRACE(c.id);
    glm45 += c.options.tool_parser == "glm45";
    glm47 += c.options.tool_parser == "glm47";
    hermes += c.options.tool_parser == "hermes";
    const Streamed expected = whole(c, "stop");
    const std::vector<size_t> chars = char_boundaries(c.text);
    auto check = [&](const std::vector<size_t>& cuts, const std::string& how) {
      for (bool empty_last : {false, true}) {
        const Streamed s =
            stream(c, cuts, empty_last, "stop", how + (empty_last ? ", empty last piece" : ""));
        ASSERT_EQ(s.message, expected.message) << how;
        ASSERT_EQ(s.finish_reason, expected.finish_reason) << how;
      }
    };
    for (size_t step = 1; step <= 3; ++step) {
      std::vector<size_t> cuts;
      for (size_t i = 0; i < chars.size(); i += step) cuts.push_back(chars[i]);
      if (cuts.back() != c.text.size()) cuts.push_back(c.text.size());
      check(cuts, std::to_string(step) + "-character deltas");
    }
    std::mt19937 rng(20260516);
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
  // The formats the server's default checkpoints use are all in the corpus.
  EXPECT_GE(glm45, 10);
  EXPECT_GE(glm47, 10);
  EXPECT_GE(hermes, 10);
}

TEST(ChatChoiceOutput, FinishReasonIsToolCallsOnlyForAStopAfterACall) {
  const ChatOutputOptions glm = {
      .tool_parser = "glm47", .reasoning_parser = "glm45", .starts_in_reasoning = true};
  ChatChoiceOutput call(glm, kSeed);
  (void)call.push("</think><tool_call>list_files</tool_call>", true);
  EXPECT_TRUE(call.called_tools());
  EXPECT_EQ(call.finish_reason("stop"), "tool_calls");
  EXPECT_EQ(call.finish_reason("length"),
            "length");  // cut off: the caller must know the call may be incomplete
  ChatChoiceOutput text(glm, kSeed);
  (void)text.push("Let me think.</think>Hello.", true);
  EXPECT_FALSE(text.called_tools());
  EXPECT_EQ(text.finish_reason("stop"), "stop");
  EXPECT_EQ(text.message(),
            json({{"role", "assistant"}, {"content", "Hello."}, {"reasoning_content", "Let me think."}}));
}

TEST(ChatChoiceOutput, StreamDeltasHaveOpenAiShapeAndTypedArguments) {
  // GLM-4.7 writes every argument value as text; the tool's schema types it ("3" -> 3, "true" -> true).
  const json tools = json::parse(R"([{"type": "function", "function": {"name": "get_weather", "parameters": {
      "type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"},
                                       "metric": {"type": "boolean"}}}}}])");
  const ChatOutputOptions glm = {.tool_parser = "glm47",
                                 .reasoning_parser = "glm45",
                                 .starts_in_reasoning = true,
                                 .schemas = parsers::ToolSchemas::from_openai_tools(tools)};
  ChatChoiceOutput out(glm, kSeed);
  std::vector<json> deltas;
  // Pieces as an MTP step delivers them: the name split mid-way, several tags in one piece.
  for (const char* piece :
       {"Weather?", "</think><tool_call>get_wea", "ther<arg_key>location</arg_key><arg_value>Par",
        "is</arg_value><arg_key>days</arg_key><arg_value>3</arg_value><arg_key>metric",
        "</arg_key><arg_value>true</arg_value></tool_call>"}) {
    for (json& d : out.push(piece, false)) deltas.push_back(std::move(d));
  }
  for (json& d : out.push("", true)) deltas.push_back(std::move(d));
  ASSERT_GE(deltas.size(), 3u);
  EXPECT_EQ(deltas[0], json({{"reasoning_content", "Weather?"}}));
  EXPECT_EQ(deltas[1],
            json::parse(R"({"tool_calls": [{"index": 0, "id": ")" + parsers::tool_call_id(kSeed, 0) +
                        R"(", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})"));
  std::string args;
  for (size_t i = 2; i < deltas.size(); ++i) {
    const json& tc = deltas[i].at("tool_calls").at(0);
    EXPECT_EQ(tc.at("index"), 0);
    EXPECT_FALSE(tc.contains("id"));
    EXPECT_FALSE(tc.at("function").contains("name"));
    args += tc.at("function").at("arguments").get<std::string>();
  }
  EXPECT_EQ(json::parse(args), json::parse(R"({"location": "Paris", "days": 3, "metric": true})")) << args;
  EXPECT_EQ(out.message()["tool_calls"][0]["function"]["arguments"], args);
  EXPECT_TRUE(out.message()["content"].is_null());
  EXPECT_EQ(out.finish_reason("stop"), "tool_calls");
}

TEST(ChatChoiceOutput, WithoutParsersTheTextIsContentAsIs) {
  // tool_choice "none" (or no tools, or no parser on the server): tool-call syntax is plain text.
  const std::string text =
      "\n<think>hm</think>\n<tool_call>get_weather\n<arg_key>a</arg_key>\n<arg_value>1</arg_value>\n</"
      "tool_call>";
  ChatChoiceOutput out({}, kSeed);
  std::string streamed;
  for (size_t i = 0; i < text.size(); i += 5)
    for (const json& d : out.push(text.substr(i, 5), i + 5 >= text.size()))
      streamed += d.at("content").get<std::string>();
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(out.message(), json({{"role", "assistant"}, {"content", text}}));
  EXPECT_EQ(out.finish_reason("stop"), "stop");
  // Reasoning alone: the think block is split off, the call stays content.
  ChatChoiceOutput reasoning({.reasoning_parser = "glm45"}, kSeed);
  (void)reasoning.push(text, true);
  EXPECT_EQ(reasoning.message()["reasoning_content"], "hm");
  EXPECT_EQ(reasoning.message()["content"], text.substr(text.find("<tool_call>")));
}

TEST(ChatChoiceOutput, ChoicesOfOneResponseHaveTheirOwnCallIds) {
  // n > 1: one output per choice, each with its own seed, so calls of different choices never share an id.
  const ChatOutputOptions hermes = {.tool_parser = "hermes", .reasoning_parser = "qwen3"};
  const std::string text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>";
  ChatChoiceOutput a(hermes, "chatcmpl-x/0"), b(hermes, "chatcmpl-x/1");
  (void)a.push(text, true);
  (void)b.push(text, true);
  const json ma = a.message(), mb = b.message();
  EXPECT_NE(ma["tool_calls"][0]["id"], mb["tool_calls"][0]["id"]);
  EXPECT_EQ(ma["tool_calls"][0]["function"], mb["tool_calls"][0]["function"]);
  EXPECT_EQ(ma["tool_calls"][0]["function"]["arguments"], "{\"x\":1}");
}

}  // namespace
}  // namespace tandem::server
