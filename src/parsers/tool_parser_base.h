// Shared machinery of the tool-call parsers (not a public header): the event writer with the content
// whitespace policy, the JSON object writer of the key/value formats, and the push/finish driver.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parsers/parse_event.h"
#include "parsers/text_scanner.h"
#include "parsers/tool_parser.h"

namespace tandem::parsers {

/// Builds the events of one parser: content (whitespace next to calls dropped, see tool_parser.h) and calls.
class CallWriter {
 public:
  explicit CallWriter(std::string call_id_seed) : seed_(std::move(call_id_seed)) {}

  void content(std::string_view text);
  void begin_call(std::string_view name);
  void args(std::string_view json);
  void end_call();
  /// End of output: whitespace still held back is dropped.
  void finish() { pending_space_.clear(); }

  bool in_call() const { return in_call_; }
  [[nodiscard]] std::vector<ParseEvent> take();

 private:
  void emit(EventKind kind, std::string_view text);

  std::string seed_;
  std::vector<ParseEvent> events_;
  std::string pending_space_;  // trailing content whitespace, emitted only if more content text follows
  bool content_started_ = false;
  bool in_call_ = false;
  int n_calls_ = 0;
};

/// The arguments object of formats that send each argument as key + plain-text value (GLM, Qwen3-Coder):
/// {"key":value,...} with the value typed by the tool's schema. String values stream as they arrive.
class KeyValueArgs {
 public:
  explicit KeyValueArgs(CallWriter& out) : out_(out) {}

  void open();  // "{"
  void begin_value(std::string_view key, ArgTypes types);
  void value_text(std::string_view text);
  void end_value();
  /// Ends an open value, then "}". Idempotent.
  void close();
  bool closed() const { return closed_; }

 private:
  CallWriter& out_;
  int n_ = 0;
  bool in_value_ = false;
  bool streaming_ = false;
  bool closed_ = true;
  ArgTypes types_ = 0;
  std::string key_;
  std::string raw_;  // a typed value, held until complete
};

/// Drives a parser's step() over the input. A call is "undecided" between its start tag and its complete
/// name; the input from just after the tag is kept, so that a rejected call can be passed on as content.
class StreamingToolParser : public ToolParser {
 public:
  std::vector<ParseEvent> push(std::string_view delta) final;
  std::vector<ParseEvent> finish() final;

 protected:
  explicit StreamingToolParser(ToolParserOptions options)
      : schemas_(std::move(options.schemas)), out_(std::move(options.call_id_seed)) {}

  /// Advances the state machine; false when it needs more input (or, at the end, can go no further).
  virtual bool step() = 0;
  /// End of output, after step() went as far as it could with the call begun (if any): close what is open.
  virtual void close_at_eof() = 0;
  /// Back to plain content (after a rejected call).
  virtual void to_content() = 0;

  /// The parser has just consumed start tag `tag`: the call is undecided until begin_call().
  void open_undecided(std::string_view tag);
  /// The name is complete: emits kToolCallBegin.
  void begin_call(std::string_view name);
  /// Not a call after all: the start tag is content, and the text after it is read again as content.
  bool reject_call();
  /// Forgets an undecided call start without emitting anything (DeepSeek's empty block of calls).
  void drop_undecided();
  bool undecided() const { return undecided_; }

  ToolSchemas schemas_;
  TextScanner in_;
  CallWriter out_;

 private:
  bool undecided_ = false;
  std::string start_tag_;
  size_t after_tag_ = 0;
};

}  // namespace tandem::parsers
