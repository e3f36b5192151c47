#include "models/glm4_moe/nextn.h"

#include "models/glm4_moe/weights.h"

namespace tandem::models::glm4_moe {

mtp::MtpSpec nextn_spec(const Glm4MoeConfig& c) {
  mtp::MtpSpec s;
  s.layout = mtp::MtpLayout{.family = "Glm4Moe NextN",
                            .prefix = "model.layers." + std::to_string(c.num_hidden_layers) + ".",
                            .fc = "eh_proj",
                            .norm_embedding = "enorm",
                            .norm_hidden = "hnorm",
                            .final_norm = "shared_head.norm",
                            .decoder = "",
                            .own_embed = "embed_tokens",
                            .own_head = "shared_head.head",
                            .unit_offset_norms = false};
  s.hidden_size = c.hidden_size;
  s.vocab_size = c.vocab_size;
  s.rms_norm_eps = c.rms_norm_eps;
  s.layer_options = c.layer_options();
  s.load_layer = [c](loader::WeightMap& wm, const std::string& prefix, loader::LinearLoad load) {
    return load_decoder_layer(wm, prefix, c, /*moe=*/true, load);  // N >= first_k_dense_replace
  };
  return s;
}

}  // namespace tandem::models::glm4_moe
