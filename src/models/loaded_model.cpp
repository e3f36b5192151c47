#include "models/loaded_model.h"

#include "core/log.h"
#include "models/glm4_moe/nextn.h"

namespace tandem::models {

std::unique_ptr<LoadedModel> load_model(const std::filesystem::path& dir, const LoadOptions& options,
                                        ops::Backend& backend) {
  auto m = std::make_unique<LoadedModel>();
  m->checkpoint = loader::Checkpoint::open(dir);
  m->config = glm4_moe::Glm4MoeConfig::from_hf(m->checkpoint->config());
  m->quant = loader::QuantConfig::from_hf(m->checkpoint->config());

  loader::WeightMap wm(
      *m->checkpoint, m->quant,
      [&backend](ops::LinearWeight& w, std::vector<Buffer>& owned) { backend.load_linear(w, owned); },
      [&backend](Tensor& t, std::vector<Buffer>& owned) { backend.load_weight(t, owned); });
  m->target = std::make_unique<glm4_moe::Glm4MoeForCausalLM>(m->config, wm);

  const mtp::MtpSpec spec = glm4_moe::nextn_spec(m->config);
  m->mtp_prefix = spec.layout.prefix;
  // The MTP layer is present when any tensor sits under its prefix; from then on every tensor the layout
  // requires must be there (a missing one is an error naming it, not a silently absent draft).
  for (const auto& name : m->checkpoint->tensor_names())
    if (name.rfind(m->mtp_prefix, 0) == 0) m->checkpoint_has_mtp = true;
  if (m->config.num_nextn_predict_layers > 0 && !m->checkpoint_has_mtp && options.with_draft)
    log::warn("config.json declares num_nextn_predict_layers = {} but {} has no {}* tensors: no draft",
              m->config.num_nextn_predict_layers, dir.string(), m->mtp_prefix);
  if (options.with_draft && m->checkpoint_has_mtp) {
    m->draft_precision =
        mtp::decide_draft_precision(options.draft_quant, *m->checkpoint, m->quant, m->mtp_prefix, backend);
    m->draft = std::make_unique<mtp::MtpDraft>(spec, wm, m->target->embed_tokens(), m->target->lm_head(),
                                               m->draft_precision.load);
  }
  std::vector<std::string> skip;
  if (!m->draft) {  // the MTP layer (and any deeper ones) belong to a draft we did not build
    for (int l = m->config.num_hidden_layers; l < m->config.num_hidden_layers + 8; ++l)
      skip.push_back("model.layers." + std::to_string(l) + ".");
  }
  m->unused_tensors = wm.finish(skip);
  if (!m->unused_tensors.empty()) {
    std::string list;
    for (size_t i = 0; i < m->unused_tensors.size() && i < 20; ++i) list += "\n  " + m->unused_tensors[i];
    log::warn("{} tensors in {} were not consumed by any module:{}{}", m->unused_tensors.size(), dir.string(),
              list, m->unused_tensors.size() > 20 ? "\n  ..." : "");
  }
  m->linears = wm.linear_records();
  m->owned = wm.take_owned();
  return m;
}

size_t LoadedModel::resident_weight_bytes() const {
  size_t total = 0;
  for (const auto& b : owned) total += b.tensor().nbytes();
  return total + target->total_weight_bytes() + (draft ? draft->active_bytes_per_token() : 0);
}

}  // namespace tandem::models
