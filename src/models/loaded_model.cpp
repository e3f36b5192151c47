#include "models/loaded_model.h"

#include <set>

#include "core/log.h"
#include "loader/dummy_weight_map.h"
#include "models/config_overrides.h"
#include "models/glm4_moe/nextn.h"
#include "models/memory_plan.h"

namespace tandem::models {

LoadFormat parse_load_format(const std::string& name) {
  if (name == "auto") return LoadFormat::kAuto;
  if (name == "dummy") return LoadFormat::kDummy;
  fail(
      "--load-format: unknown value '{}' (auto: read the checkpoint's weights; dummy: make them from "
      "config.json)",
      name);
}

std::string_view load_format_name(LoadFormat format) {
  return format == LoadFormat::kDummy ? "dummy" : "auto";
}

namespace {

/// Weights plus the workspace reserve of `config` with the memory plan's options for a dummy load.
size_t dummy_need(const glm4_moe::Glm4MoeConfig& config, const loader::QuantConfig& quant,
                  const MemoryPlanOptions& options) {
  const MemoryPlan plan = plan_memory(config, quant, options);
  return plan.weight_bytes() + plan.workspace_bytes;
}

/// --load-format dummy: refuses, before anything is allocated, when the weights the memory plan counts for
/// this config (the draft's included when it will be built) plus the workspace reserve of a forward exceed
/// what the backend can still allocate; the error names the largest layer count that fits.
void check_dummy_fits(const LoadedModel& m, const LoadOptions& options, DType weight_dtype,
                      ops::Backend& backend) {
  const MemoryPlanOptions po{
      .with_draft = options.with_draft, .draft_own_embed_head = false, .weight_dtype = weight_dtype};
  const MemoryPlan plan = plan_memory(m.config, m.quant, po);
  const size_t need = plan.weight_bytes() + plan.workspace_bytes;
  const size_t available = backend.available_memory_bytes();
  if (available == 0) {
    log::warn(
        "--load-format dummy: backend {} does not report its free memory, so the {} of weights are not "
        "checked against it",
        backend.name(), format_bytes(static_cast<double>(plan.weight_bytes())));
    return;
  }
  if (need <= available) return;
  // Binary search for the most layers that fit: a plan walks every expert's name, so not one plan per count.
  int lo = 0, hi = m.config.num_hidden_layers;  // lo layers fit (0: none known to), hi do not
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    glm4_moe::Glm4MoeConfig c = m.config;
    c.num_hidden_layers = mid;
    (dummy_need(c, m.quant, po) <= available ? lo : hi) = mid;
  }
  const std::string hint =
      lo > 0 ? fmt::format(
                   "At most {} layers fit: pass --json-model-override-args '{{\"num_hidden_layers\": {}}}'",
                   lo, lo)
             : std::string("Not even one layer fits (embed_tokens and lm_head alone are large)");
  fail(
      "--load-format dummy: {} ({} layers{}, {}) needs {} of weights + {} workspace reserve, but backend {} "
      "has {} available; nothing was allocated. {}",
      m.checkpoint->dir().string(), m.config.num_hidden_layers, plan.has_draft ? " + the NextN draft" : "",
      m.quant.method == loader::QuantMethod::kNone ? std::string(dtype_name(weight_dtype))
                                                   : mtp::scheme_name(m.quant),
      format_bytes(static_cast<double>(plan.weight_bytes())),
      format_bytes(static_cast<double>(plan.workspace_bytes)), backend.name(),
      format_bytes(static_cast<double>(available)), hint);
}

/// Whether a dummy MTP layer under `prefix` has fp8 Linears (what DummyWeightMap makes for them).
bool dummy_mtp_has_fp8(const loader::QuantConfig& quant, const std::string& prefix) {
  for (const char* module :
       {"eh_proj", "shared_head.head", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
        "self_attn.o_proj", "mlp.experts.0.gate_proj", "mlp.experts.0.up_proj", "mlp.experts.0.down_proj",
        "mlp.shared_experts.gate_proj", "mlp.shared_experts.up_proj", "mlp.shared_experts.down_proj"})
    if (quant.quantizes(prefix + module)) return true;
  return false;
}

}  // namespace

std::unique_ptr<LoadedModel> load_model(const std::filesystem::path& dir, const LoadOptions& options,
                                        ops::Backend& backend) {
  auto m = std::make_unique<LoadedModel>();
  const bool dummy = options.load_format == LoadFormat::kDummy;
  m->load_format = options.load_format;
  m->checkpoint =
      loader::Checkpoint::open(dir, {.read_weights = !dummy, .config_overrides = options.config_overrides});
  std::set<std::string> keys_read;
  m->config = glm4_moe::Glm4MoeConfig::from_hf(m->checkpoint->config(), &keys_read);
  m->quant = loader::QuantConfig::from_hf(m->checkpoint->config());
  check_config_overrides(options.config_overrides, keys_read);
  const mtp::MtpSpec spec = glm4_moe::nextn_spec(m->config);
  m->mtp_prefix = spec.layout.prefix;

  std::unique_ptr<loader::WeightMap> wm;
  DType dummy_dtype = DType::kBF16;
  if (dummy) {
    dummy_dtype = weight_dtype_from_config(m->checkpoint->config());
    check_dummy_fits(*m, options, dummy_dtype, backend);
    wm = std::make_unique<loader::DummyWeightMap>(
        *m->checkpoint, m->quant, backend,
        loader::DummyOptions{.seed = options.dummy_seed, .weight_dtype = dummy_dtype});
    m->checkpoint_has_mtp = m->config.num_nextn_predict_layers > 0;
  } else {
    wm = std::make_unique<loader::WeightMap>(
        *m->checkpoint, m->quant,
        [&backend](ops::LinearWeight& w, std::vector<Buffer>& owned) { backend.load_linear(w, owned); },
        [&backend](Tensor& t, std::vector<Buffer>& owned) { backend.load_weight(t, owned); });
    // The MTP layer is present when any tensor sits under its prefix; from then on every tensor the layout
    // requires must be there (a missing one is an error naming it, not a silently absent draft).
    for (const auto& name : m->checkpoint->tensor_names())
      if (name.rfind(m->mtp_prefix, 0) == 0) m->checkpoint_has_mtp = true;
    if (m->config.num_nextn_predict_layers > 0 && !m->checkpoint_has_mtp && options.with_draft)
      log::warn("config.json declares num_nextn_predict_layers = {} but {} has no {}* tensors: no draft",
                m->config.num_nextn_predict_layers, dir.string(), m->mtp_prefix);
  }
  m->target = std::make_unique<glm4_moe::Glm4MoeForCausalLM>(m->config, *wm);

  if (options.with_draft && m->checkpoint_has_mtp) {
    m->draft_precision =
        dummy ? mtp::decide_draft_precision(options.draft_quant, dummy_mtp_has_fp8(m->quant, m->mtp_prefix),
                                            dummy_dtype, m->quant, backend)
              : mtp::decide_draft_precision(options.draft_quant, *m->checkpoint, m->quant, m->mtp_prefix,
                                            backend);
    m->draft = std::make_unique<mtp::MtpDraft>(spec, *wm, m->target->embed_tokens(), m->target->lm_head(),
                                               m->draft_precision.load);
  }
  std::vector<std::string> skip;
  if (!m->draft) {  // the MTP layer (and any deeper ones) belong to a draft we did not build
    for (int l = m->config.num_hidden_layers; l < m->config.num_hidden_layers + 8; ++l)
      skip.push_back("model.layers." + std::to_string(l) + ".");
  }
  m->unused_tensors = wm->finish(skip);
  if (!m->unused_tensors.empty()) {
    std::string list;
    for (size_t i = 0; i < m->unused_tensors.size() && i < 20; ++i) list += "\n  " + m->unused_tensors[i];
    log::warn("{} tensors in {} were not consumed by any module:{}{}", m->unused_tensors.size(), dir.string(),
              list, m->unused_tensors.size() > 20 ? "\n  ..." : "");
  }
  m->linears = wm->linear_records();
  m->owned = wm->take_owned();
  if (dummy) {
    size_t bytes = 0;
    for (const auto& b : m->owned) bytes += b.tensor().nbytes();
    log::info("--load-format dummy: {} tensors ({}) made on {} with seed {}: {} layers{}, {}",
              m->owned.size(), format_bytes(static_cast<double>(bytes)), backend.name(), options.dummy_seed,
              m->config.num_hidden_layers, m->draft ? " + NextN draft" : "",
              m->quant.method == loader::QuantMethod::kNone ? std::string(dtype_name(dummy_dtype))
                                                            : mtp::scheme_name(m->quant));
  }
  return m;
}

size_t LoadedModel::resident_weight_bytes() const {
  size_t total = 0;
  for (const auto& b : owned) total += b.tensor().nbytes();
  if (load_format == LoadFormat::kDummy) return total;  // every weight is an owned buffer
  return total + target->total_weight_bytes() + (draft ? draft->active_bytes_per_token() : 0);
}

}  // namespace tandem::models
