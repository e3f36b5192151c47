#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace tandem::sampling {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kMaxFloat = std::numeric_limits<float>::max();

// A penalty parameter as the arithmetic uses it: request validation rejects non-finite values, but the
// sampler stays total without it. NaN means "no penalty"; +-inf acts as the largest finite value.
float finite_param(float v, float neutral) {
  if (std::isnan(v)) return neutral;
  return std::clamp(v, -kMaxFloat, kMaxFloat);
}

// A penalised logit that overflowed saturates at the largest finite value, so a penalty can push a token to
// the bottom (or top) of the row but never turns a finite row into -inf / NaN.
float saturate(float v) {
  return std::isinf(v) ? std::copysign(kMaxFloat, v) : v;
}

// NaN counts as -inf everywhere in this file: it never wins, never gets mass, never breaks a sort.
float ordered(float v) {
  return std::isnan(v) ? -kInf : v;
}

}  // namespace

void apply_penalties(std::span<float> logits, const SamplingParams& p, const TokenHistory& h) {
  const float repetition = finite_param(p.repetition_penalty, 1.0f);
  const float frequency = finite_param(p.frequency_penalty, 0.0f);
  const float presence = finite_param(p.presence_penalty, 0.0f);
  if (repetition != 1.0f) {
    auto penalise = [&](int32_t id) {
      if (id < 0 || static_cast<size_t>(id) >= logits.size()) return;
      float& l = logits[id];
      if (!std::isfinite(l)) return;  // an -inf / +inf / NaN logit stays what it was
      // l == 0 takes the multiply, so a zero penalty (refused by validation) gives 0, not 0 / 0.
      l = saturate(l > 0 ? l / repetition : l * repetition);
    };
    for (const auto& [id, n] : h.prompt_counts) penalise(id);
    for (const auto& [id, n] : h.output_counts)
      if (!h.prompt_counts.contains(id)) penalise(id);
  }
  for (const auto& [id, n] : h.output_counts) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
    float& l = logits[id];
    if (!std::isfinite(l)) continue;
    // Finite parameters cannot make inf - inf: frequency * n may overflow, presence is finite.
    l = saturate(l - (frequency * static_cast<float>(n) + (n > 0 ? presence : 0.0f)));
  }
}

int32_t argmax(std::span<const float> logits) {
  TANDEM_CHECK(!logits.empty(), "argmax of an empty row");
  // The first largest value, NaN counted as -inf, in two passes that have no long dependency chain: the
  // largest value over 8 independent running maxima, then its first index. The single compare-and-select
  // chain of std::max_element was 1% of the bench model's decode step (16k vocab).
  const size_t n = logits.size();
  float m[8] = {-kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) m[j] = logits[i + j] > m[j] ? logits[i + j] : m[j];  // NaN never selected
  for (; i < n; ++i) m[0] = logits[i] > m[0] ? logits[i] : m[0];
  float best = m[0];
  for (int j = 1; j < 8; ++j) best = m[j] > best ? m[j] : best;
  if (best == -kInf) return 0;  // every entry is -inf or NaN: all tie, the lowest id wins
  size_t k = 0;
  while (logits[k] != best) ++k;
  return static_cast<int32_t>(k);
}

std::vector<float> target_distribution(std::span<const float> logits, const SamplingParams& p) {
  const size_t V = logits.size();
  std::vector<float> probs(V, 0.0f);
  if (V == 0) return probs;
  if (!(p.temperature > 0.0f)) {  // outside the precondition (0, NaN): the greedy token, as sample() does
    probs[argmax(logits)] = 1.0f;
    return probs;
  }
  float mx = -kInf;
  for (float l : logits) mx = l > mx ? l : mx;  // NaN never selected
  if (mx == -kInf) {
    // No token has a finite logit (a NaN / -inf row): all mass on the defined fallback, argmax's lowest id.
    probs[argmax(logits)] = 1.0f;
    return probs;
  }
  if (mx == kInf) {
    // softmax's limit: the +inf logits share the mass, whatever the temperature.
    size_t count = 0;
    for (float l : logits) count += l == kInf;
    for (size_t i = 0; i < V; ++i) probs[i] = logits[i] == kInf ? 1.0f / static_cast<float>(count) : 0.0f;
  } else {
    // A temperature of +inf (refused by validation) acts as the largest float: (-inf) / t stays -inf.
    const float t = std::min(p.temperature, kMaxFloat);
    double sum = 0.0;
    for (size_t i = 0; i < V; ++i) {
      // l - mx <= 0 (or -inf, or NaN for a NaN logit), so every weight is in [0, 1] and the max's is 1.
      const float w = std::exp((logits[i] - mx) / t);
      probs[i] = std::isnan(w) ? 0.0f : w;
      sum += probs[i];
    }
    for (auto& x : probs) x = static_cast<float>(x / sum);
  }

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
  TANDEM_CHECK(!logits.empty(), "sampling from an empty row");
  // A NaN temperature (refused by validation) is not "> 0": greedy, like 0.
  if (p.greedy() || std::isnan(p.temperature)) return argmax(logits);
  return inverse_cdf(target_distribution(logits, p), u);
}

void log_softmax(std::span<const float> logits, std::span<float> out) {
  const size_t V = logits.size();
  float mx = -kInf;
  for (float l : logits) mx = l > mx ? l : mx;  // NaN never selected
  if (mx == -kInf) {
    // No finite logit: the sampler's fallback is a token all the same; report the uniform law rather than
    // NaN.
    const float uniform = -static_cast<float>(std::log(static_cast<double>(V)));
    for (size_t i = 0; i < V; ++i) out[i] = uniform;
    return;
  }
  if (mx == kInf) {
    size_t count = 0;
    for (float l : logits) count += l == kInf;
    const float share = -static_cast<float>(std::log(static_cast<double>(count)));
    for (size_t i = 0; i < V; ++i) out[i] = logits[i] == kInf ? share : -kInf;
    return;
  }
  double sum = 0.0;
  for (float l : logits)
    if (!std::isnan(l)) sum += std::exp(static_cast<double>(l - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  for (size_t i = 0; i < V; ++i) out[i] = std::isnan(logits[i]) ? -kInf : logits[i] - lse;
}

std::vector<std::pair<int32_t, float>> top_k_entries(std::span<const float> values, int k) {
  std::vector<int32_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::clamp<int>(k, 0, static_cast<int>(values.size()));
  // NaN ordered as -inf keeps the comparison a strict weak order (a NaN in it would be undefined behaviour).
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    const float va = ordered(values[a]), vb = ordered(values[b]);
    return va > vb || (va == vb && a < b);
  });
  std::vector<std::pair<int32_t, float>> out;
  for (int i = 0; i < k; ++i) out.emplace_back(idx[i], values[idx[i]]);
  return out;
}

}  // namespace tandem::sampling
