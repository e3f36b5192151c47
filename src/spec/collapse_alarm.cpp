#include "spec/collapse_alarm.h"

#include "core/error.h"

namespace tandem::spec {

CollapseAlarm::CollapseAlarm(Options options) : options_(options) {
  TANDEM_CHECK(options_.window > 0 && options_.threshold < options_.recover,
               "collapse alarm: window {} must be > 0 and threshold {} below recover {}", options_.window,
               options_.threshold, options_.recover);
  ring_.assign(static_cast<size_t>(options_.window), 0);
}

bool CollapseAlarm::record(int tokens) {
  sum_ += tokens - ring_[next_];
  ring_[next_] = tokens;
  next_ = (next_ + 1) % ring_.size();
  if (filled_ < ring_.size()) ++filled_;
  if (filled_ < ring_.size()) return false;  // a partial window says nothing yet
  const double al = window_accept_length();
  if (!collapsed_ && al <= options_.threshold) {
    collapsed_ = true;
    return true;
  }
  if (collapsed_ && al >= options_.recover) collapsed_ = false;
  return false;
}

double CollapseAlarm::window_accept_length() const {
  return filled_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(filled_);
}

}  // namespace tandem::spec
