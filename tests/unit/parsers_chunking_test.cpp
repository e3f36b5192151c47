// Chunking invariance of the output parsers (issue 16). For every case of the corpus in tests/fixtures/parsers/
// (real GLM-4.5/4.7, Hermes/Qwen3, Qwen3-Coder/Qwen3.5 and DeepSeek-V3 output shapes), feeding the text in any
// deltas — every 2-piece split, all 1-, 2- and 3-character deltas, seeded random sizes — gives the same events
// (once coalesced) and the same final message as the non-streamed parse, and that message is the fixture's
// expectation. A generator adds random outputs in each format (round trip of the calls it wrote), cut off or
// damaged at random. Splits fall on UTF-8 character boundaries only: the server's detokenizer never delivers
// part of a character (see tool_parser.h).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "parsers/message_parser.h"
#include "parsers/tool_call_id.h"

namespace tandem::parsers {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Case {
  std::string file;  // fixture file name without .json
  std::string id;    // file/case
  std::string text;
  std::string tool_parser;
  std::string reasoning_parser;
  bool starts_in_reasoning = false;
  json tools;
  json expect;
};

std::vector<Case> load_corpus() {
  std::vector<Case> cases;
  const fs::path dir = fs::path(TANDEM_SOURCE_DIR) / "tests" / "fixtures" / "parsers";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    std::ifstream in(file);
    const json doc = json::parse(in);
    for (const json& c : doc.at("cases")) {
      cases.push_back({
          .file = file.stem().string(),
          .id = file.stem().string() + "/" + c.at("name").get<std::string>(),
          .text = c.at("text").get<std::string>(),
          .tool_parser = c.value("tool_parser", doc.at("tool_parser").get<std::string>()),
          .reasoning_parser = c.value("reasoning_parser", doc.at("reasoning_parser").get<std::string>()),
          .starts_in_reasoning = c.value("starts_in_reasoning", false),
          .tools = doc.at("tools"),
          .expect = c.at("expect"),
      });
    }
  }
  return cases;
}

MessageParserOptions options_for(const Case& c) {
  return {.tool_parser = c.tool_parser,
          .reasoning_parser = c.reasoning_parser,
          .starts_in_reasoning = c.starts_in_reasoning,
          .schemas = ToolSchemas::from_openai_tools(c.tools),
          .call_id_seed = "chatcmpl-test/0"};
}

struct Outcome {
  ParsedMessage message;
  std::vector<ParseEvent> events;  // coalesced over the whole run
};

// Feeds text[cuts[i], cuts[i+1]) as deltas (cuts start at 0 and end at text.size()).
Outcome feed(const Case& c, const std::vector<size_t>& cuts) {
  MessageParser parser(options_for(c));
  std::vector<ParseEvent> all;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    for (ParseEvent& e : parser.push(std::string_view(c.text).substr(cuts[i], cuts[i + 1] - cuts[i]))) {
      all.push_back(std::move(e));
    }
  }
  for (ParseEvent& e : parser.finish()) all.push_back(std::move(e));
  Outcome r;
  apply_events(r.message, all);
  r.events = coalesce(std::move(all));
  return r;
}

// Byte offsets of character boundaries, 0 and text.size() included.
std::vector<size_t> char_boundaries(const std::string& text) {
  std::vector<size_t> b;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) b.push_back(i);
  }
  b.push_back(text.size());
  return b;
}

// The event stream keeps the parsers' contract: calls begin in order with a complete name and an id, arguments
// and end only for the open call, every call ends, and the arguments of each call are one JSON object.
void check_event_contract(const std::vector<ParseEvent>& events, const std::string& where) {
  int open = -1;
  int next = 0;
  std::string args;
  for (const ParseEvent& e : events) {
    switch (e.kind) {
      case EventKind::kContent:
      case EventKind::kReasoning:
        EXPECT_EQ(open, -1) << where << ": text inside tool call " << open;
        break;
      case EventKind::kToolCallBegin:
        EXPECT_EQ(open, -1) << where;
        EXPECT_EQ(e.tool_index, next) << where;
        EXPECT_FALSE(e.name.empty()) << where;
        EXPECT_EQ(e.id, tool_call_id("chatcmpl-test/0", e.tool_index)) << where;
        open = next++;
        args.clear();
        break;
      case EventKind::kToolCallArgs:
        EXPECT_EQ(e.tool_index, open) << where;
        args += e.text;
        break;
      case EventKind::kToolCallEnd: {
        EXPECT_EQ(e.tool_index, open) << where;
        const json parsed = json::parse(args, nullptr, false);
        EXPECT_FALSE(parsed.is_discarded()) << where << ": arguments are not JSON: " << args;
        EXPECT_TRUE(parsed.is_object()) << where << ": arguments are not an object: " << args;
        open = -1;
        break;
      }
    }
  }
  EXPECT_EQ(open, -1) << where << ": a call never ended";
}

// One fixture file per test (each ctest test is a process of its own): its cases run in a loop.
struct FixtureFile {
  std::string name;
  std::vector<Case> cases;
};

std::vector<FixtureFile> corpus_files() {
  std::vector<FixtureFile> files;
  for (Case& c : load_corpus()) {
    if (files.empty() || files.back().name != c.file) files.push_back({.name = c.file});
    files.back().cases.push_back(std::move(c));
  }
  return files;
}

void PrintTo(const FixtureFile& f, std::ostream* os) { *os << f.name; }

class ParserCorpus : public ::testing::TestWithParam<FixtureFile> {};

TEST_P(ParserCorpus, NonStreamedMatchesExpectation) {
  for (const Case& c : GetParam().cases) {
    SCOPED_TRACE(c.id);
    const Outcome whole = feed(c, {0, c.text.size()});
    check_event_contract(whole.events, "whole");
    EXPECT_EQ(whole.message, parse_message(c.text, options_for(c)));

    const json& expect = c.expect;
    EXPECT_EQ(whole.message.content, expect.at("content").get<std::string>());
    EXPECT_EQ(whole.message.reasoning_content, expect.at("reasoning_content").get<std::string>());
    const json& calls = expect.at("tool_calls");
    ASSERT_EQ(whole.message.tool_calls.size(), calls.size());
    for (size_t i = 0; i < calls.size(); ++i) {
      const ToolCall& got = whole.message.tool_calls[i];
      EXPECT_EQ(got.name, calls[i].at("name").get<std::string>()) << "call " << i;
      EXPECT_EQ(json::parse(got.arguments), calls[i].at("arguments")) << "call " << i << ": " << got.arguments;
      EXPECT_EQ(got.id, tool_call_id("chatcmpl-test/0", static_cast<int>(i)));
    }
  }
}

TEST_P(ParserCorpus, EveryChunkingGivesTheSameMessage) {
  for (const Case& c : GetParam().cases) {
    SCOPED_TRACE(c.id);
    const Outcome whole = feed(c, {0, c.text.size()});
    const std::vector<size_t> chars = char_boundaries(c.text);
    auto check = [&](const std::vector<size_t>& cuts, const std::string& how) {
      const Outcome r = feed(c, cuts);
      ASSERT_EQ(r.message, whole.message) << how;
      ASSERT_EQ(r.events, whole.events) << how;
      check_event_contract(r.events, how);
    };
    // Two pieces, split at every character boundary.
    for (size_t i = 0; i < chars.size(); ++i) check({0, chars[i], c.text.size()}, "split at byte " + std::to_string(chars[i]));
    // Fixed delta sizes of 1, 2 and 3 characters.
    for (size_t step = 1; step <= 3; ++step) {
      std::vector<size_t> cuts;
      for (size_t i = 0; i < chars.size(); i += step) cuts.push_back(chars[i]);
      if (cuts.back() != c.text.size()) cuts.push_back(c.text.size());
      check(cuts, std::to_string(step) + "-character deltas");
    }
    // Random delta sizes: mostly short (an MTP step is a few tokens), sometimes long.
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      std::mt19937 rng(seed);
      std::vector<size_t> cuts = {0};
      for (size_t i = 0; i < chars.size() - 1;) {
        i = std::min(chars.size() - 1, i + 1 + (rng() % 4 == 0 ? rng() % 40 : rng() % 6));
        cuts.push_back(chars[i]);
      }
      check(cuts, "random deltas, seed " + std::to_string(seed));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ParserCorpus, ::testing::ValuesIn(corpus_files()),
                         [](const ::testing::TestParamInfo<FixtureFile>& info) { return info.param.name; });

// The corpus covers every parser and the shapes the issue lists.
TEST(ParserCorpusCoverage, EveryParserHasCases) {
  std::set<std::string> tool, reasoning;
  for (const Case& c : load_corpus()) {
    tool.insert(c.tool_parser);
    reasoning.insert(c.reasoning_parser);
  }
  for (const std::string& name : tool_parser_names()) EXPECT_TRUE(tool.contains(name)) << name;
  for (const std::string& name : reasoning_parser_names()) EXPECT_TRUE(reasoning.contains(name)) << name;
}

// ---------------------------------------------------------------- generated outputs

// Random outputs in each format, built the way the chat templates write calls, with random names, keys and
// values (JSON of any shape, strings with markup, quotes, backslashes, newlines and emoji). Unchanged, the
// parsed calls must be the generated ones; mutated (cut off anywhere, a tag or piece of one inserted, a span
// deleted), the events must still keep the contract. Either way chunking must not matter.
class OutputGenerator {
 public:
  OutputGenerator(uint32_t seed, const json& tools) : rng_(seed), schemas_(ToolSchemas::from_openai_tools(tools)) {}

  struct Output {
    std::string text;
    json calls = json::array();  // [{"name", "arguments"}] as written, when not mutated
  };

  Output make(const std::string& format, bool thinking, bool prompt_opened) {
    Output out;
    if (thinking) out.text += (prompt_opened ? "" : "<think>") + words(6, false) + "</think>\n\n";
    out.text += words(4, true);
    const int n_calls = static_cast<int>(rng_() % 4);
    for (int i = 0; i < n_calls; ++i) {
      const std::string name = pick({"get_weather", "search", "list_files", "write_file", "unknown_tool"});
      json args = json::object();
      for (size_t k = rng_() % 4; k > 0; --k) {
        const std::string key = pick({"location", "days", "query", "filters", "tags", "exact", "threshold", "cursor", "content"});
        args[key] = value_for(name, key, format);
      }
      out.text += (i > 0 ? "\n" : "") + render_call(format, name, args);
      out.calls.push_back({{"name", name}, {"arguments", args}});
    }
    if (rng_() % 3 == 0) out.text += "\n" + words(3, true);
    return out;
  }

  // Cuts the text off, inserts a tag (or part of one) or deletes a span; at character boundaries.
  std::string mutate(std::string text, const std::vector<std::string>& tags) {
    const std::vector<size_t> chars = char_boundaries(text);
    const size_t at = chars[rng_() % chars.size()];
    switch (rng_() % 3) {
      case 0:
        return text.substr(0, at);
      case 1: {
        const std::string tag = pick(tags);
        const size_t len = rng_() % 2 ? tag.size() : char_boundaries(tag)[rng_() % char_boundaries(tag).size()];
        return text.insert(at, tag.substr(0, len));
      }
      default: {
        const size_t to = chars[std::min(chars.size() - 1, static_cast<size_t>(std::lower_bound(chars.begin(), chars.end(), at) - chars.begin()) + rng_() % 12)];
        return text.erase(at, to - at);
      }
    }
  }

 private:
  std::string pick(std::initializer_list<const char*> options) { return options.begin()[rng_() % options.size()]; }
  std::string pick(const std::vector<std::string>& options) { return options[rng_() % options.size()]; }

  // Prose; `markup` allows angle brackets that are not tags.
  std::string words(int max, bool markup) {
    std::string s;
    for (size_t n = rng_() % (max + 1); n > 0; --n) {
      s += markup ? pick({"Hello", " ", "\n", "a<b", "<b>x</b>", "😀", "北京", "<tool", "<｜", "x > y", "\"q\""})
                  : pick({"think", " ", "\n", "😀", "中文", "a<b", "<b>", "step 2."});
    }
    return s;
  }

  std::string string_value() {
    std::string s;
    for (size_t n = rng_() % 6; n > 0; --n) {
      s += pick({"abc", " ", "\n", "<", ">", "\"", "\\", "北京", "😀", "</", "{", "}", "12", "true", "<b>", "\t"});
    }
    return s;
  }

  json any_json(int depth) {
    switch (rng_() % (depth > 2 ? 5 : 7)) {
      case 0: return string_value();
      case 1: return static_cast<int>(rng_() % 2000) - 1000;
      case 2: return (static_cast<int>(rng_() % 20000) - 10000) / 64.0;
      case 3: return rng_() % 2 == 0;
      case 4: return nullptr;
      case 5: {
        json a = json::array();
        for (size_t n = rng_() % 4; n > 0; --n) a.push_back(any_json(depth + 1));
        return a;
      }
      default: {
        json o = json::object();
        for (size_t n = rng_() % 4; n > 0; --n) o[pick({"a", "b", "k e y", "中", "x\"y"})] = any_json(depth + 1);
        return o;
      }
    }
  }

  // A value the format can carry unambiguously: in the plain-text formats (GLM, Qwen3-Coder), a string where
  // the schema allows only strings (or does not know the parameter), else a value of one of its other types.
  json value_for(const std::string& name, const std::string& key, const std::string& format) {
    if (format == "hermes" || format == "deepseekv3") return any_json(0);
    const ArgTypes types = schemas_.types(name, key);
    if (is_string_only(types)) return string_value();
    std::vector<ArgTypes> bits;
    for (ArgTypes b : {kArgInteger, kArgNumber, kArgBoolean, kArgObject, kArgArray, kArgNull}) {
      if (types & b) bits.push_back(b);
    }
    switch (bits[rng_() % bits.size()]) {
      case kArgInteger: return static_cast<int>(rng_() % 2000) - 1000;
      case kArgNumber: return (static_cast<int>(rng_() % 20000) - 10000) / 8.0;
      case kArgBoolean: return rng_() % 2 == 0;
      case kArgObject: return json::object({{"q", any_json(1)}, {"r", any_json(2)}});
      case kArgArray: return json::array({any_json(1), any_json(2)});
      default: return nullptr;
    }
  }

  std::string render_call(const std::string& format, const std::string& name, const json& args) {
    auto plain = [&](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
    std::string s;
    if (format == "glm45" || format == "glm47") {
      const std::string sep = format == "glm45" ? "\n" : "";
      s = "<tool_call>" + name + sep;
      for (const auto& [k, v] : args.items()) {
        s += "<arg_key>" + k + "</arg_key>" + sep + "<arg_value>" + plain(v) + "</arg_value>" + sep;
      }
      return s + "</tool_call>";
    }
    if (format == "qwen3_coder") {
      s = "<tool_call>\n<function=" + name + ">\n";
      for (const auto& [k, v] : args.items()) {
        const std::string text = v.is_boolean() ? (v.get<bool>() ? "True" : "False") : v.is_null() ? "None" : plain(v);
        s += "<parameter=" + k + ">\n" + text + "\n</parameter>\n";
      }
      return s + "</function>\n</tool_call>";
    }
    if (format == "hermes") {
      const std::string a = args.dump(rng_() % 2 ? -1 : 1);
      return "<tool_call>\n" + std::string(rng_() % 4 == 0 ? "{\"arguments\": " + a + ", \"name\": \"" + name + "\"}"
                                                             : "{\"name\": \"" + name + "\", \"arguments\": " + a + "}") +
             "\n</tool_call>";
    }
    return "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>" + name + "\n```json\n" +
           args.dump(rng_() % 2 ? -1 : 2) + "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  }

  std::mt19937 rng_;
  ToolSchemas schemas_;
};

TEST(ParserFuzz, GeneratedOutputsRoundTripAndAreChunkingInvariant) {
  const std::vector<std::string> tags = {
      "<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>", "<function=x>",
      "</function>", "<parameter=k>", "</parameter>", "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>",
      "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>", "```", "<think>", "</think>", "{", "\"", "\n"};
  const json tools = load_corpus().front().tools;
  OutputGenerator gen(16, tools);
  std::mt19937 rng(17);
  size_t round_trips = 0;
  for (const std::string& format : tool_parser_names()) {
    for (int n = 0; n < 240; ++n) {
      const bool thinking = n % 3 != 0;
      const bool opened = thinking && n % 2 == 0;
      OutputGenerator::Output o = gen.make(format, thinking, opened);
      const bool mutated = n % 2 == 1;
      Case c{.id = "fuzz",
             .text = mutated ? gen.mutate(o.text, tags) : o.text,
             .tool_parser = format,
             .reasoning_parser = thinking ? "qwen3" : "",
             .starts_in_reasoning = opened,
             .tools = tools};
      const std::string where = format + (mutated ? " mutated: " : ": ") + json(c.text).dump();
      const Outcome whole = feed(c, {0, c.text.size()});
      check_event_contract(whole.events, where);
      if (!mutated) {
        ASSERT_EQ(whole.message.tool_calls.size(), o.calls.size()) << where;
        for (size_t i = 0; i < o.calls.size(); ++i) {
          EXPECT_EQ(whole.message.tool_calls[i].name, o.calls[i]["name"]) << where;
          EXPECT_EQ(json::parse(whole.message.tool_calls[i].arguments), o.calls[i]["arguments"]) << where;
        }
        round_trips += o.calls.size();
      }
      const std::vector<size_t> chars = char_boundaries(c.text);
      for (int trial = 0; trial < 6; ++trial) {
        std::vector<size_t> cuts = {0};
        for (size_t i = 0; i < chars.size() - 1;) {
          i = std::min(chars.size() - 1, i + 1 + rng() % (trial < 3 ? 3 : 12));
          cuts.push_back(chars[i]);
        }
        const Outcome r = feed(c, cuts);
        ASSERT_EQ(r.message, whole.message) << where;
        ASSERT_EQ(r.events, whole.events) << where;
      }
    }
  }
  EXPECT_GT(round_trips, 500u);
}

}  // namespace
}  // namespace tandem::parsers
