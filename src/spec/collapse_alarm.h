// The collapse alarm: watches the server-wide accept length over a sliding window of verify steps and says when
// speculation has stopped paying (the seed's failure: a draft loaded at the wrong precision dropped acceptance
// from ~2 to ~1.1 while /health stayed green). The engine feeds it every verify step, logs once when it trips
// (naming the draft's precision decision), and exports its state as tandem:spec_decode_collapsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tandem::spec {

class CollapseAlarm {
 public:
  struct Options {
    int window = 256;          // verify steps the accept length is averaged over
    double threshold = 1.05;   // trips when the window's accept length is at or below this (full window only)
    double recover = 1.20;     // clears when it is back at or above this (hysteresis: no flapping)
  };

  CollapseAlarm() : CollapseAlarm(Options{}) {}
  explicit CollapseAlarm(Options options);

  /// Records one verify step that emitted `tokens` tokens (its accepted drafts plus the target's own token).
  /// Returns true when this step tripped the alarm (it was clear before), so the caller logs exactly once.
  bool record(int tokens);

  bool collapsed() const { return collapsed_; }
  /// Mean tokens per verify step over the window (0 before the first step).
  double window_accept_length() const;
  const Options& options() const { return options_; }

 private:
  Options options_;
  std::vector<int> ring_;  // [window] tokens emitted by each of the last verify steps
  size_t next_ = 0;
  size_t filled_ = 0;
  int64_t sum_ = 0;
  bool collapsed_ = false;
};

}  // namespace tandem::spec
