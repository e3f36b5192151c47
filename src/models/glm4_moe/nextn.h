// GLM-4.x NextN draft: the MTP layout row for Glm4Moe checkpoints (layer N = num_hidden_layers).
#pragma once

#include "models/glm4_moe/config.h"
#include "models/mtp/mtp_layout.h"

namespace tandem::models::glm4_moe {

/// model.layers.{N}.{enorm, hnorm, eh_proj, shared_head.norm, [embed_tokens], [shared_head.head]} plus a
/// full MoE Glm4Moe decoder layer under the same prefix.
mtp::MtpSpec nextn_spec(const Glm4MoeConfig& config);

}  // namespace tandem::models::glm4_moe
