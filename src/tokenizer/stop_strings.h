// Stop strings for streamed output: the text is checked as it arrives in chunks, and a stop string may straddle
// chunk (and token) boundaries.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tandem::tokenizer {

class StopStringMatcher {
 public:
  /// `stops` must not contain an empty string (throws tandem::Error).
  explicit StopStringMatcher(std::vector<std::string> stops);

  struct Result {
    std::string emit;     // text safe to send now
    bool stopped;         // a stop string was completed; nothing after it is ever emitted
    std::string matched;  // the stop string that matched (stopped only)
  };

  /// Feeds new text. Returns the text that can no longer become part of a stop string, holding back the longest
  /// suffix that is a proper prefix of some stop string. The stream stops at the earliest point where a stop
  /// string is complete (the longest one if several end there); `emit` then holds the text before it and the stop
  /// string itself is not emitted. Chunking does not change the result. After a stop, push() returns nothing.
  Result push(std::string_view text);

  /// End of stream without a stop: returns the held-back text.
  std::string finish();

  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace tandem::tokenizer
