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

int32_t inverse_cdf(std::span<const float> probs, double u) {
  TANDEM_CHECK(u >= 0.0 && u < 1.0, "uniform {} outside [0, 1)", u);
  double total = 0.0;
  for (float x : probs)
    if (x > 0.0f) total += x;
  TANDEM_CHECK(total > 0.0, "no token has positive probability");
  // Scaling u by the total (rather than assuming 1) keeps the draw proportional to the float weights as
  // stored; the same accumulation order makes the final running sum equal `total` bit for bit.
  const double threshold = u * total;
  double acc = 0.0;
  int32_t last = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (!(probs[i] > 0.0f)) continue;
    acc += probs[i];
    last = static_cast<int32_t>(i);
    if (threshold < acc) return last;
  }
  // Not reached for u < 1 and a normal total (u * total < total, and acc ends at total exactly); kept so
  // that no rounding path can return an id without mass.
  return last;
}

int32_t sample(std::span<const float> logits, const SamplingParams& p, double u) {
  if (p.greedy()) return argmax(logits);
  return inverse_cdf(target_distribution(logits, p), u);
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
