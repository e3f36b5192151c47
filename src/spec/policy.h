// How many drafts a request gets at its next verify step. A policy is a small value type behind a
// std::variant (TRT-LLM's scheduler-policy pattern): FixedK always drafts K; AdaptiveK lets the engine's
// AdaptiveController (spec/adaptive_controller.h) pick K in 0..k_max each step from acceptance estimates and a
// measured cost table; ScriptedK replays a schedule (tests force K to change every step with it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <variant>
#include <vector>

namespace tandem::spec {

/// Always K drafts (--speculative-policy fixed, --speculative-num-steps K).
struct FixedK {
  int k = 3;
};

/// K in 0..k_max per step (--speculative-policy adaptive, --speculative-num-steps k_max).
struct AdaptiveK {
  int k_max = 3;
  double prior_weight = 4.0;   // pseudo-observations of the server-wide rate in a request's estimate
  double initial_rate = 0.6;   // the server-wide rate before any verify step
  double request_decay = 0.9;  // evidence kept per verify step: a request's estimate
  double server_decay = 0.98;  // ... the server-wide estimate
  double margin = 0.03;        // drafting must promise this much more than K = 0 (timings err by a few percent;
                               // a wrong K > 0 costs, a wrong K = 0 only forgoes a gain that small)
  int probe_min = 8;           // steps paused at K = 0 before probing K = 1 (two steps); doubles per probe ...
  int probe_max = 128;         // ... up to this
  int explore_every = 128;     // while speculating, every this many steps try another K for two steps (round
                               // robin), so the cost table's other cells are re-timed too
  int admit_probe_every = 8;   // while paused, one new request in this many keeps a draft state (the others
                               // run plain: no draft work at all)
};

/// K for a request's n-th draft decision = ks[n % size] (tests; not reachable from the command line).
struct ScriptedK {
  std::vector<int> ks;
};

using SpecPolicy = std::variant<FixedK, AdaptiveK, ScriptedK>;

/// What a policy may look at for one request.
struct DraftBudget {
  int64_t remaining_tokens = 0;   // max_tokens - tokens already emitted (>= 1 while the request runs)
  int64_t context_left = 0;       // max_model_len - tokens in the sequence
};

/// Caps a wanted draft count so that the step never verifies past max_tokens (a verify of k drafts emits up
/// to k + 1 tokens) or past the context limit.
[[nodiscard]] inline int cap_draft_length(int want, const DraftBudget& b) {
  const int64_t cap = std::min(b.remaining_tokens - 1, b.context_left - 1);
  return static_cast<int>(std::clamp<int64_t>(cap, 0, want));
}

/// The largest K the policy may ever ask for (sizes the draft's lookahead and the cost table).
[[nodiscard]] inline int max_draft_length(const SpecPolicy& policy) {
  struct {
    int operator()(const FixedK& p) const { return p.k; }
    int operator()(const AdaptiveK& p) const { return p.k_max; }
    int operator()(const ScriptedK& p) const {
      return p.ks.empty() ? 0 : *std::max_element(p.ks.begin(), p.ks.end());
    }
  } visit;
  return std::visit(visit, policy);
}

}  // namespace tandem::spec
