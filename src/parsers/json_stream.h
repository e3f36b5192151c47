// Incremental JSON for tool-call arguments: model-written JSON arrives in deltas of any size and must leave as
// fragments whose concatenation is valid JSON even when the output is cut off (max_tokens) in the middle.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::parsers {

/// Appends `s` to `out` as the inside of a JSON string (no quotes): `"` `\` and control characters escaped,
/// every other byte copied (UTF-8 stays as is, so a piece may end inside a character when its input does).
void append_json_escaped(std::string& out, std::string_view s);
std::string json_quote(std::string_view s);

/// Reads one JSON value byte by byte and writes it back compact (no whitespace outside strings), emitting text
/// as soon as it is certain to belong to the value:
///   - a string value is emitted as it arrives, except an unfinished escape sequence;
///   - an object key, its colon and the comma before it are held back until the value after them starts;
///   - a number or true/false/null is held back until it ends.
/// So at any moment the text taken so far can be closed into valid JSON by close_truncated(): close an open
/// string, drop held-back text, close open arrays and objects. A raw control character inside a string (not
/// valid JSON, but models write raw newlines in code) is escaped rather than rejected.
class JsonStreamer {
 public:
  enum class Status {
    kMore,   // the value is not complete yet
    kDone,   // the value is complete; bytes after it were not consumed
    kError,  // not JSON; the byte at which it failed was not consumed
  };

  /// Consumes bytes of `text` until the value is complete or invalid; returns the number consumed and sets
  /// `status`. A top-level number completes only at the byte after it (or at end_of_input()).
  size_t push(std::string_view text, Status& status);

  /// The input is complete: a pending top-level number or literal is emitted. Returns whether the input was one
  /// complete JSON value.
  bool end_of_input();

  /// The input was cut off (or was invalid from some byte on): drops held-back text, closes an open string and
  /// the open arrays and objects. Afterwards the text taken in total is valid JSON unless no value had started
  /// (then it is empty). No effect on a complete value.
  void close_truncated();

  /// Text that is certain, since the last take().
  [[nodiscard]] std::string take();

  bool started() const { return started_; }
  bool complete() const { return complete_; }
  /// The first byte of the value ('{', '[', '"', 't', 'f', 'n', '-' or a digit); 0 before it starts.
  char first_byte() const { return first_; }

 private:
  enum class Expect { kValue, kKeyOrEnd, kKey, kColon, kValueOrEnd, kCommaOrEnd };
  enum class Mode { kNormal, kString, kEscape, kUnicode, kNumber, kLiteral };
  struct Frame {
    bool object;
    Expect expect;
  };

  // Returns false when `c` is invalid here; true when it was consumed (or, for a number end, handed on).
  bool step(char c);
  bool start_value(char c);
  void value_done();
  std::string& sink() { return in_key_ ? held_ : out_; }
  bool number_valid() const;

  std::vector<Frame> stack_;
  Expect top_expect_ = Expect::kValue;  // outside any container
  Mode mode_ = Mode::kNormal;
  bool in_key_ = false;
  std::string escape_;    // an unfinished escape sequence (\, \u12, ...), or a \uD8xx waiting for its pair
  int hex_left_ = 0;
  std::string scalar_;    // the number or literal being read
  std::string_view literal_;
  std::string held_;      // certain to be valid, not yet certain to stay (comma, key, colon, scalar)
  std::string out_;
  bool started_ = false;
  bool complete_ = false;
  char first_ = 0;
};

}  // namespace tandem::parsers
