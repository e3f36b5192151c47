// Hermes / Qwen3 tool calls: <tool_call>\n{"name": NAME, "arguments": {...}}\n</tool_call>, as the Qwen3 chat
// templates write them. The outer object is read member by member; "arguments" (or "parameters") is streamed
// through a JsonStreamer as it arrives once the name is known, and held until then when it comes first.
// Arguments that are not an object become {} (a JSON string holding an object is unwrapped).
#include <nlohmann/json.hpp>

#include "parsers/json_stream.h"
#include "parsers/tool_parser_formats.h"

namespace tandem::parsers {
namespace {

constexpr std::string_view kCallBegin = "<tool_call>";
constexpr std::string_view kCallEnd = "</tool_call>";
constexpr auto kDrop = TextScanner::AtEof::kDrop;

std::string decode_json_string(const std::string& json) { return nlohmann::json::parse(json).get<std::string>(); }

class HermesToolParser final : public StreamingToolParser {
 public:
  explicit HermesToolParser(ToolParserOptions options) : StreamingToolParser(std::move(options)) {}

  std::vector<std::string> start_tags() const override { return {std::string(kCallBegin)}; }
  std::vector<std::string> tags() const override { return {std::string(kCallBegin), std::string(kCallEnd)}; }

 private:
  enum class State {
    kContent,
    kOpen,         // before the outer {
    kMemberOrEnd,  // after {
    kMember,       // after ,
    kKey,
    kColon,
    kValue,
    kName,
    kArgsObject,
    kArgsOther,    // arguments that are not an object
    kSkipValue,
    kCommaOrEnd,
    kAfterObject,  // up to </tool_call>
  };
  enum class Args { kNone, kStreaming, kDone };

  bool step() override {
    switch (state_) {
      case State::kContent: {
        const auto t = in_.take_until({kCallBegin});
        out_.content(t.text);
        if (t.tag < 0) return !t.text.empty();
        open_undecided(kCallBegin);
        name_.clear();
        args_ = Args::kNone;
        deferred_args_.clear();
        state_ = State::kOpen;
        return true;
      }
      case State::kOpen:
        if (!in_.skip_space()) return false;
        if (in_.rest().front() != '{') return fail();
        in_.advance(1);
        state_ = State::kMemberOrEnd;
        return true;
      case State::kMemberOrEnd:
      case State::kMember: {
        if (!in_.skip_space()) return false;
        const char c = in_.rest().front();
        if (c == '}' && state_ == State::kMemberOrEnd) {
          in_.advance(1);
          return end_object();
        }
        if (c != '"') return fail();
        reader_ = JsonStreamer();
        state_ = State::kKey;
        return true;
      }
      case State::kKey: {
        const auto [progress, status] = read(reader_);
        if (status == JsonStreamer::Status::kError) return fail();
        if (status == JsonStreamer::Status::kMore) return progress;
        key_ = decode_json_string(reader_.take());
        state_ = State::kColon;
        return true;
      }
      case State::kColon:
        if (!in_.skip_space()) return false;
        if (in_.rest().front() != ':') return fail();
        in_.advance(1);
        state_ = State::kValue;
        return true;
      case State::kValue: {
        if (!in_.skip_space()) return false;
        const char c = in_.rest().front();
        reader_ = JsonStreamer();
        if (key_ == "name" && name_.empty()) {
          if (c != '"') return fail();
          state_ = State::kName;
        } else if ((key_ == "arguments" || key_ == "parameters") && args_ == Args::kNone) {
          state_ = c == '{' ? State::kArgsObject : State::kArgsOther;
        } else {
          state_ = State::kSkipValue;
        }
        return true;
      }
      case State::kName: {
        const auto [progress, status] = read(reader_);
        if (status == JsonStreamer::Status::kError) return fail();
        if (status == JsonStreamer::Status::kMore) return progress;
        const std::string name = decode_json_string(reader_.take());
        if (!valid_function_name(name)) return fail();
        name_ = name;
        begin_call(name_);
        out_.args(deferred_args_);  // arguments that came first (members are read in order: they are complete)
        state_ = State::kCommaOrEnd;
        return true;
      }
      case State::kArgsObject: {
        const auto [progress, status] = read(reader_);
        if (reader_.started()) args_ = Args::kStreaming;  // fail() closes what was read
        if (status == JsonStreamer::Status::kError) return fail();
        emit_args(reader_.take());
        if (status == JsonStreamer::Status::kMore) return progress;
        args_ = Args::kDone;
        state_ = State::kCommaOrEnd;
        return true;
      }
      case State::kArgsOther: {
        const auto [progress, status] = read(reader_);
        if (status == JsonStreamer::Status::kError) return fail();
        if (status == JsonStreamer::Status::kMore) return progress;
        std::string json = reader_.take();
        std::string object = "{}";
        if (reader_.first_byte() == '"') {  // "arguments": "{\"city\": \"Paris\"}"
          const std::string inner = decode_json_string(json);
          JsonStreamer unwrapped;
          JsonStreamer::Status s;
          if (unwrapped.push(inner, s) == inner.size() && unwrapped.end_of_input() && unwrapped.first_byte() == '{') {
            object = unwrapped.take();
          }
        }
        args_ = Args::kDone;
        emit_args(object);
        state_ = State::kCommaOrEnd;
        return true;
      }
      case State::kSkipValue: {
        const auto [progress, status] = read(reader_);
        if (status == JsonStreamer::Status::kError) return fail();
        if (status == JsonStreamer::Status::kMore) return progress;
        state_ = State::kCommaOrEnd;
        return true;
      }
      case State::kCommaOrEnd: {
        if (!in_.skip_space()) return false;
        const char c = in_.rest().front();
        if (c != ',' && c != '}') return fail();
        in_.advance(1);
        if (c == '}') return end_object();
        state_ = State::kMember;
        return true;
      }
      case State::kAfterObject: {  // anything between the object and </tool_call> is dropped
        const auto t = in_.take_until({kCallEnd}, kDrop);
        if (t.tag < 0) return !t.text.empty();
        close_call();
        return true;
      }
    }
    return false;
  }

  // Feeds the unread input to `reader`; returns whether it consumed anything, and its status.
  std::pair<bool, JsonStreamer::Status> read(JsonStreamer& reader) {
    JsonStreamer::Status status;
    const size_t n = reader.push(in_.rest(), status);
    in_.advance(n);
    if (status == JsonStreamer::Status::kMore && in_.eof()) status = JsonStreamer::Status::kError;
    return {n > 0, status};
  }

  void emit_args(const std::string& json) {
    if (undecided()) {
      deferred_args_ += json;
    } else {
      out_.args(json);
    }
  }

  bool end_object() {
    if (undecided()) return reject_call();  // no name
    state_ = State::kAfterObject;
    return true;
  }

  // Invalid JSON: before the name the call is rejected; after it, the arguments keep what was valid and the
  // rest of the call is dropped.
  bool fail() {
    if (undecided()) return reject_call();
    finish_args();
    state_ = State::kAfterObject;
    return true;
  }

  void finish_args() {
    if (args_ == Args::kStreaming) {
      reader_.close_truncated();
      out_.args(reader_.take());
    } else if (args_ == Args::kNone) {
      out_.args("{}");
    }
    args_ = Args::kDone;
  }

  void close_call() {
    finish_args();
    out_.end_call();
    state_ = State::kContent;
  }

  void close_at_eof() override {
    if (state_ != State::kContent) close_call();
  }

  void to_content() override { state_ = State::kContent; }

  State state_ = State::kContent;
  JsonStreamer reader_;
  std::string key_;
  std::string name_;
  Args args_ = Args::kNone;
  std::string deferred_args_;  // arguments read before the name
};

}  // namespace

std::unique_ptr<ToolParser> make_hermes_tool_parser(ToolParserOptions options) {
  return std::make_unique<HermesToolParser>(std::move(options));
}

}  // namespace tandem::parsers
