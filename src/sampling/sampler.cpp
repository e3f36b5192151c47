#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace tandem::sampling {

void apply_penalties(std::span<float> logits, const SamplingParams& p, const TokenHistory& h) {
  if (p.repetition_penalty != 1.0f) {
    auto penalise = [&](int32_t id) {
      if (id < 0 || static_cast<size_t>(id) >= logits.size()) return;
      float& l = logits[id];
      l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    };
    for (const auto& [id, n] : h.prompt_counts) penalise(id);
    for (const auto& [id, n] : h.output_counts)
      if (!h.prompt_counts.contains(id)) penalise(id);
  }
  for (const auto& [id, n] : h.output_counts) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
    logits[id] -= p.frequency_penalty * static_cast<float>(n) + (n > 0 ? p.presence_penalty : 0.0f);
  }
}

int32_t argmax(std::span<const float> logits) {
  TANDEM_CHECK(!logits.empty(), "argmax of an empty row");
  // std::max_element's answer (the first largest; NaNs never win unless first) in two passes that have no
  // long dependency chain: the largest value over 8 independent running maxima, then its first index. The
  // single compare-and-select chain of std::max_element was 1% of the bench model's decode step (16k vocab).
  const size_t n = logits.size();
  const float first = logits[0];
  if (std::isnan(first)) return 0;
  float m[8] = {first, first, first, first, first, first, first, first};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) m[j] = logits[i + j] > m[j] ? logits[i + j] : m[j];
  for (; i < n; ++i) m[0] = logits[i] > m[0] ? logits[i] : m[0];
  float best = m[0];
  for (int j = 1; j < 8; ++j) best = m[j] > best ? m[j] : best;
  size_t k = 0;
  while (logits[k] != best) ++k;
  return static_cast<int32_t>(k);
}

std::vector<float> target_distribution(std::span<const float> logits, const SamplingParams& p) {
  const size_t V = logits.size();
  std::vector<float> probs(V);
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (size_t i = 0; i < V; ++i) {
    probs[i] = std::exp((logits[i] - mx) / p.temperature);
    sum += probs[i];
  }
  for (auto& x : probs) x = static_cast<float>(x / sum);

  const bool use_top_k = p.top_k > 0 && static_cast<size_t>(p.top_k) < V;
  if (use_top_k || p.top_p < 1.0f || p.min_p > 0.0f) {
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
    size_t keep = use_top_k ? static_cast<size_t>(p.top_k) : V;
    if (p.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p (the token crossing it is kept)
      double mass = 0.0;
      size_t n = 0;
      while (n < keep) {
        mass += probs[order[n++]];
        if (mass >= p.top_p) break;
      }
      keep = n;
    }
    if (p.min_p > 0.0f) {
      const float floor = p.min_p * probs[order[0]];
      size_t n = 0;
      while (n < keep && probs[order[n]] >= floor) ++n;
      keep = std::max<size_t>(n, 1);
    }
    std::vector<float> kept(V, 0.0f);
    double ksum = 0.0;
    for (size_t i = 0; i < keep; ++i) ksum += probs[order[i]];
    for (size_t i = 0; i < keep; ++i) kept[order[i]] = static_cast<float>(probs[order[i]] / ksum);
    probs.swap(kept);
  }
  return probs;
}

int32_t sample_from(std::span<const float> probs, Rng& rng) {
  const double u = rng.uniform();
  double acc = 0.0;
  int32_t last_nonzero = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0.0f) continue;
    acc += probs[i];
    last_nonzero = static_cast<int32_t>(i);
    if (u < acc) return last_nonzero;
  }
  return last_nonzero;  // rounding left u above the total mass
}

int32_t sample(std::span<const float> logits, const SamplingParams& p, Rng& rng) {
  if (p.greedy()) return argmax(logits);
  const auto probs = target_distribution(logits, p);
  return sample_from(probs, rng);
}

std::pair<int32_t, bool> verify_draft_token(std::span<const float> probs, int32_t draft, Rng& rng) {
  TANDEM_CHECK(draft >= 0 && static_cast<size_t>(draft) < probs.size(), "draft token {} out of range", draft);
  const double p = probs[draft];
  if (p > 0.0 && rng.uniform() < p) return {draft, true};
  // Residual distribution max(p - onehot(draft), 0), renormalised: p without the draft token.
  std::vector<float> residual(probs.begin(), probs.end());
  residual[draft] = 0.0f;
  double sum = 0.0;
  for (float x : residual) sum += x;
  if (sum <= 0.0) return {draft, true};  // p(draft) == 1 up to rounding
  for (auto& x : residual) x = static_cast<float>(x / sum);
  return {sample_from(residual, rng), false};
}

void log_softmax(std::span<const float> logits, std::span<float> out) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  for (size_t i = 0; i < logits.size(); ++i) out[i] = logits[i] - lse;
}

std::vector<std::pair<int32_t, float>> top_k_entries(std::span<const float> values, int k) {
  std::vector<int32_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min<int>(k, static_cast<int>(values.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  std::vector<std::pair<int32_t, float>> out;
  for (int i = 0; i < k; ++i) out.emplace_back(idx[i], values[idx[i]]);
  return out;
}

}  // namespace tandem::sampling
