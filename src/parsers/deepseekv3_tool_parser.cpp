// DeepSeek-V3 tool calls, as its chat template writes them:
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```<｜tool▁call▁end｜>
//   \n<｜tool▁call▁begin｜>...<｜tool▁call▁end｜><｜tool▁calls▁end｜>
// Also accepted: DeepSeek-V3.1's <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜> (told apart by a
// "{" right after the separator), a missing code fence, and a call begin without the calls-begin tag. Text
// inside the calls block but outside a call is dropped.
#include "parsers/json_stream.h"
#include "parsers/tool_parser_formats.h"

namespace tandem::parsers {
namespace {

constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kSep = "<｜tool▁sep｜>";
constexpr std::string_view kFence = "```";
constexpr auto kDrop = TextScanner::AtEof::kDrop;

class DeepSeekV3ToolParser final : public StreamingToolParser {
 public:
  explicit DeepSeekV3ToolParser(ToolParserOptions options) : StreamingToolParser(std::move(options)) {}

  std::vector<std::string> start_tags() const override { return {std::string(kCallsBegin), std::string(kCallBegin)}; }
  std::vector<std::string> tags() const override {
    return {std::string(kCallsBegin), std::string(kCallsEnd), std::string(kCallBegin), std::string(kCallEnd),
            std::string(kSep)};
  }

 private:
  enum class State { kContent, kBlock, kHead, kAfterSep, kName, kFence, kFenceLine, kArgs, kCallTail };

  bool step() override {
    switch (state_) {
      case State::kContent: {
        const auto t = in_.take_until({kCallsBegin, kCallBegin});
        out_.content(t.text);
        if (t.tag < 0) return !t.text.empty();
        open_undecided(t.tag == 0 ? kCallsBegin : kCallBegin);  // decided by the first call's name
        state_ = t.tag == 0 ? State::kBlock : State::kHead;
        return true;
      }
      case State::kBlock: {
        const auto t = in_.take_until({kCallBegin, kCallsEnd}, kDrop);
        if (t.tag < 0) return !t.text.empty();
        if (t.tag == 1) {  // end of the block (an empty block is dropped)
          if (undecided()) drop_undecided();
          state_ = State::kContent;
          return true;
        }
        if (!undecided()) open_undecided(kCallBegin);
        state_ = State::kHead;
        return true;
      }
      case State::kHead: {  // the call type ("function"), or V3.1's name
        const std::string_view r = in_.rest();
        const TagMatch m = find_tag(r, {kSep, kCallEnd});
        if (m.tag < 0) {
          if (r.size() < kMaxNameBytes + kSep.size()) return false;
          return reject_call();
        }
        if (m.tag == 1 || m.at > kMaxNameBytes) return reject_call();
        head_ = trim(r.substr(0, m.at));
        in_.advance(m.at + kSep.size());
        state_ = State::kAfterSep;
        return true;
      }
      case State::kAfterSep: {
        if (!in_.skip_space()) return false;
        if (in_.rest().front() != '{') {
          state_ = State::kName;
          return true;
        }
        if (!valid_function_name(head_)) return reject_call();  // V3.1: the head is the name
        begin(head_);
        state_ = State::kArgs;
        return true;
      }
      case State::kName: {
        const std::string_view r = in_.rest();
        const TagMatch m = find_tag(r, {"\n", kCallEnd, kFence});
        if (m.tag < 0) {
          if (r.size() < kMaxNameBytes + kCallEnd.size()) return false;
          return reject_call();
        }
        const std::string_view name = trim(r.substr(0, m.at));
        if (m.at > kMaxNameBytes || !valid_function_name(name)) return reject_call();
        in_.advance(m.at);
        begin(std::string(name));
        state_ = State::kFence;
        return true;
      }
      case State::kFence: {
        if (!in_.skip_space()) return false;
        const auto fence = in_.accept(kFence);
        if (fence == TextScanner::Match::kPartial) return false;
        state_ = fence == TextScanner::Match::kYes ? State::kFenceLine : State::kArgs;
        return true;
      }
      case State::kFenceLine: {  // the fence's language ("json")
        const auto t = in_.take_until({"\n"}, kDrop);
        if (t.tag < 0) return !t.text.empty();
        state_ = State::kArgs;
        return true;
      }
      case State::kArgs: {
        if (!reader_.started()) {
          if (!in_.skip_space()) return false;
          if (in_.rest().front() != '{') {  // no arguments object (or not an object): {}
            state_ = State::kCallTail;
            return true;
          }
        }
        JsonStreamer::Status status;
        const size_t n = reader_.push(in_.rest(), status);
        in_.advance(n);
        out_.args(reader_.take());
        if (status == JsonStreamer::Status::kMore && !in_.eof()) return n > 0;
        if (status != JsonStreamer::Status::kDone) {
          reader_.close_truncated();  // invalid JSON: keep what was valid, drop the rest of the call
          out_.args(reader_.take());
        }
        state_ = State::kCallTail;
        return true;
      }
      case State::kCallTail: {  // the closing fence, then the call end
        const auto t = in_.take_until({kCallEnd, kCallsEnd}, kDrop);
        if (t.tag < 0) return !t.text.empty();
        end_call();
        if (t.tag == 1) state_ = State::kContent;
        return true;
      }
    }
    return false;
  }

  void begin(const std::string& name) {
    begin_call(name);
    reader_ = JsonStreamer();
  }

  void end_call() {
    if (!reader_.started()) out_.args("{}");
    reader_.close_truncated();
    out_.args(reader_.take());
    out_.end_call();
    state_ = State::kBlock;
  }

  void close_at_eof() override {
    if (state_ != State::kContent && state_ != State::kBlock) end_call();
  }

  // A rejected call inside a block of calls leaves the block: what follows is read as content.
  void to_content() override { state_ = State::kContent; }

  State state_ = State::kContent;
  JsonStreamer reader_;
  std::string head_;
};

}  // namespace

std::unique_ptr<ToolParser> make_deepseekv3_tool_parser(ToolParserOptions options) {
  return std::make_unique<DeepSeekV3ToolParser>(std::move(options));
}

}  // namespace tandem::parsers
