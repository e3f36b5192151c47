// Qwen3-Coder / Qwen3.5 XML tool calls, as the Qwen3.5 chat template writes them:
//   <tool_call>\n<function=NAME>\n<parameter=K>\nV\n</parameter>\n</function>\n</tool_call>
// V is the raw string for strings, tojson(V) for objects and arrays and Python's str(V) otherwise (True, 5);
// the schema types it back (tool_schema.h). One newline after <parameter=K> and one before </parameter> belong
// to the format, not to the value. A missing </parameter> before </function> is tolerated.
#include "parsers/tool_parser_formats.h"

namespace tandem::parsers {
namespace {

constexpr std::string_view kCallBegin = "<tool_call>";
constexpr std::string_view kCallEnd = "</tool_call>";
constexpr std::string_view kFunctionBegin = "<function=";
constexpr std::string_view kFunctionEnd = "</function>";
constexpr std::string_view kParamBegin = "<parameter=";
constexpr std::string_view kParamEnd = "</parameter>";
constexpr std::string_view kNewlineParamEnd = "\n</parameter>";
constexpr std::string_view kNewlineFunctionEnd = "\n</function>";
constexpr auto kDrop = TextScanner::AtEof::kDrop;

class Qwen3CoderToolParser final : public StreamingToolParser {
 public:
  explicit Qwen3CoderToolParser(ToolParserOptions options) : StreamingToolParser(std::move(options)) {}

  std::vector<std::string> start_tags() const override { return {std::string(kCallBegin)}; }
  std::vector<std::string> tags() const override {
    return {std::string(kCallBegin),  std::string(kCallEnd),   std::string(kFunctionBegin),
            std::string(kFunctionEnd), std::string(kParamBegin), std::string(kParamEnd)};
  }

 private:
  enum class State { kContent, kFunction, kName, kParams, kParamName, kValueStart, kValue, kAfterFunction };

  bool step() override {
    switch (state_) {
      case State::kContent: {
        const auto t = in_.take_until({kCallBegin});
        out_.content(t.text);
        if (t.tag < 0) return !t.text.empty();
        open_undecided(kCallBegin);
        state_ = State::kFunction;
        return true;
      }
      case State::kFunction: {
        if (!in_.skip_space()) return false;
        const auto m = in_.accept(kFunctionBegin);
        if (m == TextScanner::Match::kPartial) return false;
        if (m == TextScanner::Match::kNo) return reject_call();
        state_ = State::kName;
        return true;
      }
      case State::kName: {
        const std::string_view r = in_.rest();
        const size_t at = r.find('>');
        if (at == std::string_view::npos) {
          if (r.size() <= kMaxNameBytes) return false;
          return reject_call();
        }
        const std::string_view name = trim(r.substr(0, at));
        if (at > kMaxNameBytes || !valid_function_name(name)) return reject_call();
        name_ = name;
        in_.advance(at + 1);
        begin_call(name_);
        args_.open();
        state_ = State::kParams;
        return true;
      }
      case State::kParams: {  // whitespace between parameters is dropped
        const auto t = in_.take_until({kParamBegin, kFunctionEnd, kCallEnd}, kDrop);
        if (t.tag < 0) return !t.text.empty();
        if (t.tag == 0) {
          key_.clear();
          state_ = State::kParamName;
        } else {
          args_.close();
          if (t.tag == 2) return end_call();
          state_ = State::kAfterFunction;
        }
        return true;
      }
      case State::kParamName: {
        const auto t = in_.take_until({">"}, kDrop);
        key_ += t.text;
        if (t.tag < 0) return !t.text.empty();
        state_ = State::kValueStart;
        return true;
      }
      case State::kValueStart: {
        if (in_.rest().empty()) return false;
        if (in_.rest().front() == '\n') in_.advance(1);
        const std::string_view key = trim(key_);
        args_.begin_value(key, schemas_.types(name_, key));
        state_ = State::kValue;
        return true;
      }
      case State::kValue: {
        const auto t = in_.take_until({kNewlineParamEnd, kParamEnd, kNewlineFunctionEnd, kFunctionEnd}, kDrop);
        args_.value_text(t.text);
        if (t.tag < 0) return !t.text.empty();
        args_.end_value();
        if (t.tag >= 2) {
          args_.close();
          state_ = State::kAfterFunction;
        } else {
          state_ = State::kParams;
        }
        return true;
      }
      case State::kAfterFunction: {
        const auto t = in_.take_until({kCallEnd}, kDrop);
        if (t.tag < 0) return !t.text.empty();
        return end_call();
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
    if (state_ != State::kContent) end_call();  // a parameter name without value is dropped
  }

  void to_content() override { state_ = State::kContent; }

  State state_ = State::kContent;
  KeyValueArgs args_{out_};
  std::string name_;
  std::string key_;
};

}  // namespace

std::unique_ptr<ToolParser> make_qwen3_coder_tool_parser(ToolParserOptions options) {
  return std::make_unique<Qwen3CoderToolParser>(std::move(options));
}

}  // namespace tandem::parsers
