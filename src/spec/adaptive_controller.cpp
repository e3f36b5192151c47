#include "spec/adaptive_controller.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::spec {

AdaptiveController::AdaptiveController(const AdaptiveK& params, CostTable costs)
    : params_(params), costs_(std::move(costs)), server_(params.server_decay), probe_interval_(params.probe_min) {
  TANDEM_CHECK(params_.k_max >= 1 && params_.k_max <= costs_.k_max(), "adaptive policy: K max {} vs cost table {}",
               params_.k_max, costs_.k_max());
}

double AdaptiveController::expected_tokens(const AcceptanceEstimate& request, int k) const {
  return request.expected_tokens(k, &server_, params_.prior_weight, params_.initial_rate);
}

int AdaptiveController::best_k(std::span<const AcceptanceEstimate* const> requests, int64_t batch) const {
  if (requests.empty()) return 0;
  batch = std::max<int64_t>(batch, static_cast<int64_t>(requests.size()));
  const double plain = static_cast<double>(batch - static_cast<int64_t>(requests.size()));  // 1 token each
  int best = 0;
  double best_rate = 0, plain_rate = 0;
  for (int k = 0; k <= params_.k_max; ++k) {
    double tokens = plain;
    for (const AcceptanceEstimate* r : requests) tokens += expected_tokens(*r, k);
    const double rate = tokens / costs_.cost(batch, k);
    if (k == 0) plain_rate = rate;
    if (rate > best_rate) {
      best_rate = rate;
      best = k;
    }
  }
  return best_rate > plain_rate * (1.0 + params_.margin) ? best : 0;
}

int AdaptiveController::choose(std::span<const AcceptanceEstimate* const> requests, int64_t batch) {
  if (requests.empty()) return 0;
  if (forced_left_ > 0) {
    --forced_left_;
    return forced_k_;
  }
  const int k = best_k(requests, batch);
  ++decisions_;
  auto force = [&](int forced) {
    forced_k_ = forced;
    forced_left_ = 1;  // this decision and the next
    return forced;
  };
  if (k > 0) {
    paused_steps_ = 0;
    probe_interval_ = params_.probe_min;
    if (params_.explore_every > 0 && decisions_ % params_.explore_every == 0) {
      explore_k_ = (explore_k_ + 1) % (params_.k_max + 1);
      if (explore_k_ == k) explore_k_ = (explore_k_ + 1) % (params_.k_max + 1);
      return force(explore_k_);
    }
    return k;
  }
  if (++paused_steps_ < probe_interval_) return 0;
  paused_steps_ = 0;
  probe_interval_ = std::min(probe_interval_ * 2, params_.probe_max);
  return force(1);
}

}  // namespace tandem::spec
