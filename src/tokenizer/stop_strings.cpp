#include "tokenizer/stop_strings.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::tokenizer {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (size_t i = 0; i < stops_.size(); ++i) {
    TANDEM_CHECK(!stops_[i].empty(), "stop string {} of {} is empty", i, stops_.size());
  }
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view text) {
  if (stopped_) return {"", true, matched_};
  const size_t old_size = held_.size();
  held_ += text;
  // Earliest end position of any stop string in the buffer. Held text holds no complete stop string, so only
  // ends beyond the old held part are new; the scan runs over ends in increasing order.
  size_t best_end = std::string::npos;
  size_t best_len = 0;
  const std::string* best = nullptr;
  for (const std::string& s : stops_) {
    // The first occurrence that ends after old_size: search from where such an occurrence could start.
    const size_t from = old_size >= s.size() - 1 ? old_size - (s.size() - 1) : 0;
    const size_t at = held_.find(s, from);
    if (at == std::string::npos) continue;
    const size_t end = at + s.size();
    if (end < best_end || (end == best_end && s.size() > best_len)) {
      best_end = end;
      best_len = s.size();
      best = &s;
    }
  }
  if (best) {
    stopped_ = true;
    matched_ = *best;
    Result r{held_.substr(0, best_end - best_len), true, matched_};
    held_.clear();
    return r;
  }
  // Hold back the longest suffix that could still grow into a stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, held_.size()); len > hold; --len) {
      if (std::string_view(held_).substr(held_.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  Result r{held_.substr(0, held_.size() - hold), false, ""};
  held_.erase(0, held_.size() - hold);
  return r;
}

std::string StopStringMatcher::finish() {
  std::string out = stopped_ ? std::string() : std::move(held_);
  held_.clear();
  return out;
}

}  // namespace tandem::tokenizer
