// Qwen3-Next / Qwen3.5 MTP: the layout row (mtp.fc, mtp.pre_fc_norm_*, mtp.layers.0.*, mtp.norm) and a
// loader for the MTP block with the target's embedding and head.
#pragma once

#include <filesystem>
#include <memory>

#include "loader/checkpoint.h"
#include "models/mtp/mtp_draft.h"
#include "models/qwen3_next/config.h"

namespace tandem::models::qwen3_next {

mtp::MtpSpec mtp_spec(const Qwen3NextConfig& config);

/// The MTP block of a Qwen3-Next checkpoint with model.embed_tokens and lm_head (tied to the embedding
/// when tie_word_embeddings). Tensors outside mtp.* / embed / head are reported unused only in `unused`.
struct Qwen3NextMtp {
  std::unique_ptr<loader::Checkpoint> checkpoint;
  Qwen3NextConfig config;
  std::unique_ptr<mtp::MtpDraft> draft;
  std::vector<std::string> unused;
  std::vector<Buffer> owned;
};
std::unique_ptr<Qwen3NextMtp> load_mtp(const std::filesystem::path& dir, loader::LinearLoad load);

}  // namespace tandem::models::qwen3_next
