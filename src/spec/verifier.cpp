#include "spec/verifier.h"

#include "core/error.h"

namespace tandem::spec {

VerifyResult verify_chain(const RowLogits& row_logits, std::span<const int32_t> drafts,
                          const sampling::SamplingParams& params, const sampling::CounterRng& rng,
                          int64_t first_position) {
  VerifyResult r;
  const int K = static_cast<int>(drafts.size());
  for (int j = 0; j <= K; ++j) {
    const std::vector<float> logits = row_logits(j, r.tokens);
    if (j < K)
      TANDEM_CHECK(drafts[j] >= 0 && static_cast<size_t>(drafts[j]) < logits.size(), "draft token {} out of range",
                   drafts[j]);
    // The same draw plain decoding makes at this output position; greedy rows ignore the uniform.
    const int32_t y = sampling::sample(logits, params, rng.uniform(first_position + j));
    r.tokens.push_back(y);
    if (j == K || y != drafts[j]) return r;  // the bonus, or the correction at the first mismatch
    ++r.accepted;
  }
  return r;
}

}  // namespace tandem::spec
