#include "spec/verifier.h"

namespace tandem::spec {

VerifyResult verify_chain(const RowLogits& row_logits, std::span<const int32_t> drafts,
                          const sampling::SamplingParams& params, sampling::Rng& rng) {
  VerifyResult r;
  const int K = static_cast<int>(drafts.size());
  for (int j = 0; j <= K; ++j) {
    const std::vector<float> logits = row_logits(j, r.tokens);
    if (params.greedy()) {
      const int32_t y = sampling::argmax(logits);
      r.tokens.push_back(y);
      if (j == K || y != drafts[j]) return r;
      ++r.accepted;
      continue;
    }
    const std::vector<float> probs = sampling::target_distribution(logits, params);
    if (j == K) {  // every draft accepted: the bonus token comes from the last row
      r.tokens.push_back(sampling::sample_from(probs, rng));
      return r;
    }
    const auto [tok, accepted] = sampling::verify_draft_token(probs, drafts[j], rng);
    r.tokens.push_back(tok);
    if (!accepted) return r;
    ++r.accepted;
  }
  return r;
}

}  // namespace tandem::spec
