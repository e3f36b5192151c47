// The MTP / NextN draft: one class and one loader for every layout (GLM-4.x, DeepSeek-V3, Qwen3-Next/3.5).
//   z  = fc(concat[norm_embedding(embed(t_{i+1})), norm_hidden(h_i)])   (embedding first)
//   z  = decoder_layer(z) at position i, with the draft's own KV cache (one layer)
//   h' = final_norm(z);  logits = head(h')
// h_i is the target's post-final-norm hidden state for committed positions, and the draft's own h' when
// chaining draft steps. Embedding and head are the draft's own when the checkpoint has them, else the
// target's (shared, not copied).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "kv/kv_cache.h"
#include "models/causal_lm.h"
#include "models/mtp/mtp_layout.h"

namespace tandem::models::mtp {

struct DraftInput {
  std::span<const int32_t> tokens;      // [T] t_{i+1}, the token after the hidden state's position
  Tensor hidden;                        // [T, H] f32 h_i (target post-norm hidden, or a previous h')
  std::span<const int32_t> positions;   // [T] i
  std::span<const ops::SeqSlice> seqs;  // positions in the draft's KV cache
  std::span<const int32_t> logit_rows;  // rows whose logits are needed
};

class MtpDraft {
 public:
  /// Binds the layout's tensors under spec.layout.prefix through `wm` (errors collected there).
  /// target_embed [V, H] and target_head [V, H] are used when the layer has no own copies.
  MtpDraft(const MtpSpec& spec, loader::WeightMap& wm, const Tensor& target_embed,
           const ops::LinearWeight& target_head, loader::LinearLoad load);

  /// Output: logits [logit_rows, V] and hidden [T, H] = h' for every row (from `arena`). Writes KV layer 0 of
  /// `cache`. `step` gives tokens t_{i+1}, positions i, slices and logit rows; hidden [T, H] f32 is h_i. Its
  /// decode_rows are ignored: the draft picks linear() or linear_prefill() by T alone (kLinearExactRows).
  [[nodiscard]] ForwardOutput forward(ops::Backend& backend, Arena& arena, const kv::KvCache& cache,
                                      const ops::StepState& step, const Tensor& hidden) const;
  /// The same from a host batch (begin_step first).
  [[nodiscard]] ForwardOutput forward(ops::Backend& backend, Arena& arena, const kv::KvCache& cache,
                                      const DraftInput& in) const;

  const MtpLayout& layout() const { return spec_.layout; }
  bool has_own_embed() const { return own_embed_; }
  bool has_own_head() const { return own_head_; }
  int n_kv_layers() const { return 1; }
  const DecoderLayerOptions& layer_options() const { return spec_.layer_options; }
  /// Weight bytes read by one draft step at batch 1 (layer with K routed experts, fc, norms, head).
  size_t active_bytes_per_token() const;

 private:
  MtpSpec spec_;
  Tensor embed_;               // [V, H] own or target's
  ops::LinearWeight head_;     // [V, H] own or target's
  bool own_embed_ = false;
  bool own_head_ = false;
  Tensor norm_embedding_;      // [H]
  Tensor norm_hidden_;         // [H]
  ops::LinearWeight fc_;       // [H, 2H]
  DecoderLayerWeights layer_;
  Tensor final_norm_;          // [H]
};

}  // namespace tandem::models::mtp
