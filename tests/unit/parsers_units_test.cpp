// Unit tests of the parsers' building blocks: tag scanning with hold-back, the incremental JSON streamer
// (compaction, hold-back, closing a cut-off value), schema typing of plain-text argument values, tool call ids,
// event assembly, and the exact event sequences the server will forward for a few outputs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "parsers/json_stream.h"
#include "parsers/message_parser.h"
#include "parsers/text_scanner.h"
#include "parsers/tool_call_id.h"
#include "parsers/tool_schema.h"

namespace tandem::parsers {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------- TextScanner

TEST(TextScanner, HoldsBackOnlyWhatCouldBeginATag) {
  EXPECT_EQ(partial_tag_suffix("abc<tool", {"<tool_call>"}), 5u);
  EXPECT_EQ(partial_tag_suffix("abc<tool_call", {"<tool_call>"}), 10u);
  EXPECT_EQ(partial_tag_suffix("abc<b", {"<tool_call>"}), 0u);
  EXPECT_EQ(partial_tag_suffix("a\n</par", {"\n</parameter>", "</parameter>"}), 6u);
  EXPECT_EQ(partial_tag_suffix("abc", {"\n"}), 0u);  // one-byte tags never wait

  TextScanner in;
  in.push("Hello <b>x</b> <tool");
  auto t = in.take_until({"<tool_call>"});
  EXPECT_EQ(t.text, "Hello <b>x</b> ");
  EXPECT_EQ(t.tag, -1);
  in.push("_call>rest");
  t = in.take_until({"<tool_call>"});
  EXPECT_EQ(t.text, "");
  EXPECT_EQ(t.tag, 0);
  EXPECT_EQ(in.rest(), "rest");
}

TEST(TextScanner, EarliestTagWinsAndEofReleasesOrDrops) {
  EXPECT_EQ(find_tag("x\n</parameter>", {"</parameter>", "\n</parameter>"}).tag, 1);
  TextScanner a;
  a.push("value</arg_va");
  a.set_eof();
  EXPECT_EQ(a.take_until({"</arg_value>"}, TextScanner::AtEof::kDrop).text, "value");
  EXPECT_TRUE(a.rest().empty());
  TextScanner b;
  b.push("see <tool_ca");
  b.set_eof();
  EXPECT_EQ(b.take_until({"<tool_call>"}).text, "see <tool_ca");
}

// ---------------------------------------------------------------- JsonStreamer

std::string stream_whole(std::string_view text, bool* complete = nullptr) {
  JsonStreamer s;
  JsonStreamer::Status st;
  const size_t used = s.push(text, st);
  const bool ok = st != JsonStreamer::Status::kError && used == text.size() && s.end_of_input();
  if (complete) *complete = ok;
  if (!ok) s.close_truncated();
  return s.take();
}

TEST(JsonStreamer, CompactsValidJson) {
  bool complete = false;
  EXPECT_EQ(stream_whole(R"( { "a" : [ 1 , 2.5e-3 , true , null , { } , [ ] ] , "b c" : "x \" \\ \u00e9 \ud83d\ude00" })", &complete),
            R"({"a":[1,2.5e-3,true,null,{},[]],"b c":"x \" \\ \u00e9 \ud83d\ude00"})");
  EXPECT_TRUE(complete);
  EXPECT_EQ(stream_whole("-0.5", &complete), "-0.5");
  EXPECT_TRUE(complete);
  EXPECT_EQ(stream_whole("\"ok\"", &complete), "\"ok\"");
  EXPECT_TRUE(complete);
}

TEST(JsonStreamer, RejectsInvalidJson) {
  for (const char* bad : {"{'a': 1}", "{\"a\" 1}", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "{\"a\":1} x", "\"\\x\"",
                          "\"\\ud83d\"", "\"\\ude00\"", "[1 2]", "}"}) {
    bool complete = true;
    stream_whole(bad, &complete);
    EXPECT_FALSE(complete) << bad;
  }
}

TEST(JsonStreamer, RepairsRawControlCharactersInStrings) {
  EXPECT_EQ(stream_whole("{\"code\": \"a\n\tb\"}"), R"({"code":"a\n\tb"})");
}

TEST(JsonStreamer, EmitsOnlyCertainText) {
  JsonStreamer s;
  JsonStreamer::Status st;
  std::string out;
  auto feed = [&](std::string_view t) {
    EXPECT_EQ(s.push(t, st), t.size());
    out += s.take();
  };
  feed(R"({"city": "Par)");
  EXPECT_EQ(out, R"({"city":"Par)");  // a string value streams
  feed(R"(is", "days)");
  EXPECT_EQ(out, R"({"city":"Paris")");  // the comma and the next key wait for their value
  feed(R"(": 1)");
  EXPECT_EQ(out, R"({"city":"Paris")");  // a number waits for its end
  feed("2, \"note\": \"a\\u00");
  EXPECT_EQ(out, R"({"city":"Paris","days":12,"note":"a)");  // an unfinished escape waits
  feed("e9\"}");
  EXPECT_EQ(out, R"({"city":"Paris","days":12,"note":"a\u00e9"})");
  EXPECT_EQ(st, JsonStreamer::Status::kDone);
}

TEST(JsonStreamer, ClosesCutOffValuesIntoValidJson) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"a": "x)", R"({"a":"x"})"},
      {R"({"a": "x\)", R"({"a":"x"})"},
      {R"({"a": "x\ud83d)", R"({"a":"x"})"},
      {R"({"a": "x", "b)", R"({"a":"x"})"},
      {R"({"a": "x", "b":)", R"({"a":"x"})"},
      {R"({"a": 12)", R"({})"},
      {R"({"a": [1, 2, {"b": [tr)", R"({"a":[1,2,{"b":[]}]})"},
      {R"([)", R"([])"},
      {R"({)", R"({})"},
  };
  for (const auto& [cut, closed] : cases) {
    EXPECT_EQ(stream_whole(cut), closed) << cut;
    EXPECT_FALSE(json::parse(stream_whole(cut), nullptr, false).is_discarded()) << cut;
  }
}

TEST(JsonStreamer, TopLevelNumberEndsAtTheNextByte) {
  JsonStreamer s;
  JsonStreamer::Status st;
  EXPECT_EQ(s.push("42", st), 2u);
  EXPECT_EQ(st, JsonStreamer::Status::kMore);
  EXPECT_EQ(s.push("}", st), 0u);  // not consumed: it belongs to whatever holds the number
  EXPECT_EQ(st, JsonStreamer::Status::kDone);
  EXPECT_EQ(s.take(), "42");
}

// ---------------------------------------------------------------- schema typing

TEST(ToolSchema, TypesFromTypeAnyOfEnumAndConst) {
  EXPECT_EQ(schema_types(json::parse(R"({"type": "integer"})")), kArgInteger);
  EXPECT_EQ(schema_types(json::parse(R"({"type": ["string", "null"]})")), kArgString | kArgNull);
  EXPECT_EQ(schema_types(json::parse(R"({"anyOf": [{"type": "array"}, {"oneOf": [{"type": "boolean"}]}]})")),
            kArgArray | kArgBoolean);
  EXPECT_EQ(schema_types(json::parse(R"({"enum": [1, 2]})")), kArgInteger);
  EXPECT_EQ(schema_types(json::parse(R"({"const": "x"})")), kArgString);
  EXPECT_EQ(schema_types(json::parse(R"({"description": "anything"})")), 0);

  const ToolSchemas s = ToolSchemas::from_openai_tools(json::parse(R"([
    {"type": "function", "function": {"name": "f", "parameters": {"type": "object",
      "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "no_params"}},
    "not a tool", {"function": 3}])"));
  EXPECT_EQ(s.types("f", "n"), kArgInteger);
  EXPECT_EQ(s.types("f", "s"), kArgString);
  EXPECT_EQ(s.types("f", "unknown"), 0);
  EXPECT_EQ(s.types("no_params", "x"), 0);
  EXPECT_EQ(s.types("g", "n"), 0);
}

TEST(ToolSchema, TypedArgumentJson) {
  EXPECT_EQ(typed_argument_json("5", kArgInteger), "5");
  EXPECT_EQ(typed_argument_json(" 5\n", kArgInteger), "5");
  EXPECT_EQ(typed_argument_json("5.5", kArgInteger), "\"5.5\"");  // not an integer: kept as written
  EXPECT_EQ(typed_argument_json("5", kArgNumber), "5");
  EXPECT_EQ(typed_argument_json("5.5", kArgNumber), "5.5");
  EXPECT_EQ(typed_argument_json("True", kArgBoolean), "true");  // Qwen3-Coder writes Python's str()
  EXPECT_EQ(typed_argument_json("false", kArgBoolean), "false");
  EXPECT_EQ(typed_argument_json("None", kArgNull | kArgInteger), "null");
  EXPECT_EQ(typed_argument_json("{\"a\": [1, {}]}", kArgObject), "{\"a\":[1,{}]}");
  EXPECT_EQ(typed_argument_json("[1, 2]", kArgObject), "\"[1, 2]\"");
  EXPECT_EQ(typed_argument_json("{\"a\": ", kArgObject), "\"{\\\"a\\\": \"");
  EXPECT_EQ(typed_argument_json("5", kArgString), "\"5\"");
  EXPECT_EQ(typed_argument_json("5", 0), "\"5\"");  // unknown parameter: a string
  EXPECT_EQ(typed_argument_json("5", kArgString | kArgInteger), "5");
  EXPECT_EQ(typed_argument_json("\"quoted\"", kArgString | kArgInteger), "\"\\\"quoted\\\"\"");
  EXPECT_EQ(typed_argument_json("line\n\"q\"\t\\ 😀", kArgString), "\"line\\n\\\"q\\\"\\t\\\\ 😀\"");
}

// ---------------------------------------------------------------- ids, events, factories

TEST(ToolCallId, DeterministicAndDistinct) {
  const std::string a = tool_call_id("chatcmpl-1/0", 0);
  EXPECT_EQ(a, tool_call_id("chatcmpl-1/0", 0));
  EXPECT_EQ(a.size(), 5u + 24u);
  EXPECT_TRUE(a.starts_with("call_"));
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef", 5), std::string::npos);
  EXPECT_NE(a, tool_call_id("chatcmpl-1/0", 1));
  EXPECT_NE(a, tool_call_id("chatcmpl-1/1", 0));
  EXPECT_NE(tool_call_id("a1", 2), tool_call_id("a", 12));
}

TEST(ParseEvents, ApplyChecksTheContract) {
  ParsedMessage m;
  EXPECT_THROW(apply_event(m, {.kind = EventKind::kToolCallArgs, .text = "{}", .tool_index = 0}), Error);
  EXPECT_THROW(apply_event(m, {.kind = EventKind::kToolCallBegin, .tool_index = 1, .name = "f"}), Error);
  apply_events(m, {{.kind = EventKind::kContent, .text = "a"},
                   {.kind = EventKind::kToolCallBegin, .tool_index = 0, .id = "call_x", .name = "f"},
                   {.kind = EventKind::kToolCallArgs, .text = "{\"a\":", .tool_index = 0},
                   {.kind = EventKind::kToolCallArgs, .text = "1}", .tool_index = 0},
                   {.kind = EventKind::kToolCallEnd, .tool_index = 0}});
  EXPECT_EQ(m, (ParsedMessage{.content = "a", .tool_calls = {{.id = "call_x", .name = "f", .arguments = "{\"a\":1}"}}}));
}

TEST(ParseEvents, CoalesceMergesNeighboursOfOneKind) {
  const auto merged = coalesce({{.kind = EventKind::kReasoning, .text = "a"},
                                {.kind = EventKind::kReasoning, .text = "b"},
                                {.kind = EventKind::kContent, .text = ""},
                                {.kind = EventKind::kContent, .text = "c"}});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].text, "ab");
  EXPECT_EQ(merged[1].text, "c");
}

TEST(Factories, UnknownNamesAreErrors) {
  EXPECT_THROW(make_tool_parser("glm5", {}), Error);
  EXPECT_THROW(ReasoningParser("glm47", {}), Error);  // sglang#26384: there is no separate glm47 reasoning format
  EXPECT_THROW(MessageParser({.tool_parser = "nope"}), Error);
  for (const std::string& name : tool_parser_names()) EXPECT_NE(make_tool_parser(name, {}), nullptr);
}

// ---------------------------------------------------------------- what the server forwards

std::vector<ParseEvent> stream(MessageParserOptions options, const std::vector<std::string>& deltas) {
  MessageParser p(std::move(options));
  std::vector<ParseEvent> all;
  for (const std::string& d : deltas) {
    for (ParseEvent& e : p.push(d)) all.push_back(std::move(e));
  }
  for (ParseEvent& e : p.finish()) all.push_back(std::move(e));
  return all;
}

// vllm#39757: under MTP a delta ended inside the name and "run_in" was sent. The name goes out whole, with
// the delta that completes it, and string arguments stream as they arrive.
TEST(StreamedEvents, Glm47NameIsSentWholeAndArgumentsStream) {
  const auto events = stream({.tool_parser = "glm47", .reasoning_parser = "glm45", .starts_in_reasoning = true,
                              .call_id_seed = "r"},
                             {"Run it.</think><tool_call>run_in", "_terminal<arg_key>command</arg_key><arg_value>ls",
                              " -la</arg_value></tool_call>"});
  const std::vector<ParseEvent> expected = {
      {.kind = EventKind::kReasoning, .text = "Run it."},
      {.kind = EventKind::kToolCallBegin, .tool_index = 0, .id = tool_call_id("r", 0), .name = "run_in_terminal"},
      {.kind = EventKind::kToolCallArgs, .text = "{\"command\":\"ls", .tool_index = 0},
      {.kind = EventKind::kToolCallArgs, .text = " -la\"}", .tool_index = 0},
      {.kind = EventKind::kToolCallEnd, .tool_index = 0},
  };
  EXPECT_EQ(events, expected);
}

// vllm#44326: a zero-argument call written inline was dropped.
TEST(StreamedEvents, Glm47ZeroArgumentCall) {
  const auto events = stream({.tool_parser = "glm47", .call_id_seed = "r"}, {"<tool_call>list_files</tool_call>"});
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].name, "list_files");
  EXPECT_EQ(events[1].text, "{}");
  EXPECT_EQ(events[2].kind, EventKind::kToolCallEnd);
}

// Content before a tag that may still be arriving goes out at once; only the possible tag waits.
TEST(StreamedEvents, HoldsBackOnlyAPossibleTag) {
  MessageParser p({.tool_parser = "hermes", .reasoning_parser = "qwen3"});
  auto e = p.push("Sure, a<b. <tool_");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].text, "Sure, a<b.");  // the space before a possible call waits too
  e = p.push("x> is html");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].text, " <tool_x> is html");
}

// sglang#37645: with thinking off, GLM-4.7's prompt ends with </think>, and the answer is content.
TEST(StreamedEvents, ReasoningStartsOnlyWhenThePromptOpenedIt) {
  EXPECT_TRUE(prompt_opens_reasoning("<|user|>hi<|assistant|><think>"));
  EXPECT_TRUE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n"));
  EXPECT_FALSE(prompt_opens_reasoning("<|user|>hi<|assistant|></think>"));
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n"));

  const ParsedMessage off = parse_message("The answer is 42.", {.reasoning_parser = "glm45", .starts_in_reasoning = false});
  EXPECT_EQ(off.content, "The answer is 42.");
  EXPECT_EQ(off.reasoning_content, "");
  const ParsedMessage on = parse_message("Hmm.</think>42", {.reasoning_parser = "glm45", .starts_in_reasoning = true});
  EXPECT_EQ(on.reasoning_content, "Hmm.");
  EXPECT_EQ(on.content, "42");
}

TEST(StreamedEvents, WithoutParsersTextPassesThrough) {
  EXPECT_EQ(parse_message("  <think>x</think> <tool_call>\n", {}).content, "  <think>x</think> <tool_call>\n");
}

}  // namespace
}  // namespace tandem::parsers
