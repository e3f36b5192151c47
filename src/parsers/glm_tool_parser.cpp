// GLM-4.5/4.6 ("glm45") and GLM-4.7 ("glm47") tool calls. The chat templates write a call as
//   4.5/4.6: <tool_call>NAME\n<arg_key>K</arg_key>\n<arg_value>V</arg_value>\n...</tool_call>
//   4.7:     <tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>...</tool_call>   (<tool_call>NAME</tool_call>
//            without arguments)
// and V as the raw string for strings, tojson(V) otherwise; the tool's schema types it back (tool_schema.h).
// The name is only complete at its terminator: under MTP one delta can end inside it ("run_in" of
// "run_in_terminal", vllm#39757), so nothing is emitted before the newline / <arg_key> / </tool_call>.
#include "parsers/tool_parser_formats.h"

namespace tandem::parsers {
namespace {

constexpr std::string_view kCallBegin = "<tool_call>";
constexpr std::string_view kCallEnd = "</tool_call>";
constexpr std::string_view kKeyBegin = "<arg_key>";
constexpr std::string_view kKeyEnd = "</arg_key>";
constexpr std::string_view kValueBegin = "<arg_value>";
constexpr std::string_view kValueEnd = "</arg_value>";
constexpr auto kDrop = TextScanner::AtEof::kDrop;

class GlmToolParser final : public StreamingToolParser {
 public:
  explicit GlmToolParser(ToolParserOptions options) : StreamingToolParser(std::move(options)) {}

  std::vector<std::string> start_tags() const override { return {std::string(kCallBegin)}; }
  std::vector<std::string> tags() const override {
    return {std::string(kCallBegin), std::string(kCallEnd),   std::string(kKeyBegin),
            std::string(kKeyEnd),    std::string(kValueBegin), std::string(kValueEnd)};
  }

 private:
  enum class State { kContent, kName, kArgs, kKey, kBeforeValue, kValue };

  bool step() override {
    switch (state_) {
      case State::kContent: {
        const auto t = in_.take_until({kCallBegin});
        out_.content(t.text);
        if (t.tag < 0) return !t.text.empty();
        open_undecided(kCallBegin);
        state_ = State::kName;
        return true;
      }
      case State::kName: {
        const std::string_view r = in_.rest();
        const TagMatch m = find_tag(r, {"\n", kKeyBegin, kCallEnd});
        if (m.tag < 0) {
          // A terminator may still come, unless it could only start past the longest name.
          if (r.size() < kMaxNameBytes + kCallEnd.size()) return false;
          return reject_call();
        }
        const std::string_view name = trim(r.substr(0, m.at));
        if (m.at > kMaxNameBytes || !valid_function_name(name)) return reject_call();
        name_ = name;
        in_.advance(m.at + (m.tag == 0 ? 1 : 0));  // <arg_key> and </tool_call> are read by kArgs
        begin_call(name_);
        args_.open();
        state_ = State::kArgs;
        return true;
      }
      case State::kArgs: {  // between arguments: whitespace (4.5) or nothing (4.7)
        const auto t = in_.take_until({kKeyBegin, kCallEnd}, kDrop);
        if (t.tag < 0) return !t.text.empty();
        if (t.tag == 1) return end_call();
        key_.clear();
        state_ = State::kKey;
        return true;
      }
      case State::kKey: {
        const auto t = in_.take_until({kKeyEnd, kCallEnd}, kDrop);
        key_ += t.text;
        if (t.tag < 0) return !t.text.empty();
        if (t.tag == 1) return end_call();  // a key without value is dropped
        state_ = State::kBeforeValue;
        return true;
      }
      case State::kBeforeValue: {
        const auto t = in_.take_until({kValueBegin, kCallEnd}, kDrop);
        if (t.tag < 0) return !t.text.empty();
        if (t.tag == 1) return end_call();
        const std::string_view key = trim(key_);
        args_.begin_value(key, schemas_.types(name_, key));
        state_ = State::kValue;
        return true;
      }
      case State::kValue: {  // values are exact: no whitespace is trimmed from a string
        const auto t = in_.take_until({kValueEnd}, kDrop);
        args_.value_text(t.text);
        if (t.tag < 0) return !t.text.empty();
        args_.end_value();
        state_ = State::kArgs;
        return true;
      }
    }
    return false;
  }

  bool end_call() {
    args_.close();
    out_.end_call();
    state_ = State::kContent;
    return true;
  }

  void close_at_eof() override {
    if (state_ != State::kContent) end_call();
  }

  void to_content() override { state_ = State::kContent; }

  State state_ = State::kContent;
  KeyValueArgs args_{out_};
  std::string name_;
  std::string key_;
};

}  // namespace

std::unique_ptr<ToolParser> make_glm_tool_parser(ToolParserOptions options) {
  return std::make_unique<GlmToolParser>(std::move(options));
}

}  // namespace tandem::parsers
