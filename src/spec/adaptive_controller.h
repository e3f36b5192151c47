// The adaptive draft length (--speculative-policy adaptive): each step picks the K in 0..k_max that maximises
// expected committed tokens per second, sum over the batch's requests of E_r(K) = 1 + sum_{j<=K} prod_{i<=j}
// a_{r,i}, divided by the measured step cost C(batch, K) (SGLang's throughput-aware controller, with
// tandem's per-request estimates). Each request's estimate leans on a server-wide one until it has evidence. A K > 0
// must beat K = 0 by `margin` (3%): measured costs err by a few percent, and a wrong K > 0 costs.
// While K = 0 wins, the controller probes K = 1 every probe_min..probe_max steps so its estimates stay fresh; while
// K > 0 wins, it tries each other K now and then, so a cost cell mis-timed at start-up does not stick. Probes and
// explorations last two steps: the engine refines a cell only from a step that verified and drafted the same K.
#pragma once

#include <cstdint>
#include <span>

#include "spec/acceptance.h"
#include "spec/cost_table.h"
#include "spec/policy.h"

namespace tandem::spec {

class AdaptiveController {
 public:
  AdaptiveController(const AdaptiveK& params, CostTable costs);

  /// K for the next step. requests: the estimates of the speculative requests that will draft; batch: all the
  /// decoding requests the step runs (plain ones included: they cost rows but gain nothing from K).
  [[nodiscard]] int choose(std::span<const AcceptanceEstimate* const> requests, int64_t batch);
  /// The K that maximises expected tokens per second, without probing (what choose() returns when not probing).
  [[nodiscard]] int best_k(std::span<const AcceptanceEstimate* const> requests, int64_t batch) const;

  /// A fresh estimate for a new request.
  [[nodiscard]] AcceptanceEstimate new_request_estimate() const { return AcceptanceEstimate(params_.request_decay); }
  /// Expected tokens of a verify step with k drafts for this request (server-wide prior included).
  [[nodiscard]] double expected_tokens(const AcceptanceEstimate& request, int k) const;
  /// One verify step's outcome, into the server-wide estimate (the request's own is recorded by the caller).
  void record_verify(int drafted, int accepted) { server_.record(drafted, accepted); }
  /// A timed part of a decode step of `batch` requests: the verify of K = k drafts, or drafting K = k (refines the
  /// cost table).
  void record_part(CostTable::Part part, int64_t batch, int k, double seconds) { costs_.refine(part, batch, k, seconds); }

  [[nodiscard]] const CostTable& costs() const { return costs_; }
  [[nodiscard]] const AcceptanceEstimate& server() const { return server_; }
  [[nodiscard]] const AdaptiveK& params() const { return params_; }

 private:
  AdaptiveK params_;
  CostTable costs_;
  AcceptanceEstimate server_;
  int paused_steps_ = 0;  // steps at K = 0 since the last probe
  int64_t decisions_ = 0;  // decisions taken by the policy (not forced)
  int forced_k_ = 0;       // K of a probe or exploration in progress ...
  int forced_left_ = 0;    // ... for this many more decisions
  int explore_k_ = 0;      // the last K explored (round robin)
  int probe_interval_;
};

}  // namespace tandem::spec
