// Speculative-decoding statistics: one definition, used by the engine, usage.spec, /generate meta_info,
// /metrics and `tandem bench`.
//
// Accept length is SGLang's: completion tokens / verify steps (a request's first token comes from prefill and
// counts as a completion token; every later token comes from a verify step). Accepted drafts are counted when
// they are emitted: drafts that max_tokens, a stop token or the context limit cut are not accepted tokens.
#pragma once

#include <array>
#include <cstdint>

namespace tandem::spec {

inline constexpr int kMaxDraftTokens = 16;  // --speculative-num-steps upper bound

/// Per-request record (cumulative over the request's verify steps).
struct SpecStats {
  int64_t verify_steps = 0;     // target verify passes that carried at least one draft
  int64_t draft_tokens = 0;     // drafts proposed to those passes
  int64_t accepted_tokens = 0;  // drafts accepted and emitted
  int64_t plain_steps = 0;      // decode steps that verified no draft (the adaptive policy chose K = 0)
  std::array<int32_t, kMaxDraftTokens + 1> accepted_hist{};  // [j]: verify steps that emitted j drafts
  std::array<int32_t, kMaxDraftTokens + 1> drafted_hist{};   // [k]: decode steps that proposed k drafts (the K used;
                                                             // [0]: plain steps)

  /// Records one verify step that proposed `drafted` tokens of which `emitted_drafts` were emitted.
  void record_step(int drafted, int emitted_drafts) {
    ++verify_steps;
    draft_tokens += drafted;
    accepted_tokens += emitted_drafts;
    ++accepted_hist[emitted_drafts];
    ++drafted_hist[drafted];
  }
  /// Records one decode step without drafts: it emits one token and is not a verify step.
  void record_plain_step() {
    ++plain_steps;
    ++drafted_hist[0];
  }
  /// Completion tokens that count towards the accept length: all but those of plain (K = 0) steps.
  [[nodiscard]] int64_t speculative_tokens(int64_t completion_tokens) const { return completion_tokens - plain_steps; }
};

/// SGLang's spec_accept_length: completion tokens per verify step; 0 before any verify step. Tokens of plain
/// (K = 0) steps are left out of the numerator (SpecStats::speculative_tokens).
[[nodiscard]] inline double accept_length(int64_t completion_tokens, int64_t verify_steps) {
  return verify_steps > 0 ? static_cast<double>(completion_tokens) / static_cast<double>(verify_steps) : 0.0;
}

}  // namespace tandem::spec
