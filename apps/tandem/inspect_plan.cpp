#include "inspect_plan.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_text.h"
#include "kv/kv_dtype.h"
#include "loader/checkpoint.h"
#include "models/config_overrides.h"
#include "models/memory_plan.h"
#include "models/mtp/draft_precision.h"

namespace tandem::app {

namespace {

using models::format_bytes;

nlohmann::json read_json(const std::filesystem::path& file) {
  std::ifstream f(file);
  if (!f) fail("{}: cannot open (inspect --plan needs the checkpoint's config.json)", file.string());
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse_json_text<nlohmann::json>(text, file.string());
}

/// Whether the NextN layer has its own embed_tokens / shared_head.head, from the shard index when the folder
/// has one (the names only; no weights are read). Without an index: shared (what GLM-4.6 / 4.7 ship).
bool draft_owns_embed_head(const std::filesystem::path& dir, int nextn_layer) {
  const auto index = dir / "model.safetensors.index.json";
  if (!std::filesystem::exists(index)) return false;
  const nlohmann::json j = read_json(index);
  if (!j.contains("weight_map") || !j["weight_map"].is_object()) return false;
  const std::string p = "model.layers." + std::to_string(nextn_layer) + ".";
  return j["weight_map"].contains(p + "embed_tokens.weight") ||
         j["weight_map"].contains(p + "shared_head.head.weight");
}

std::string fit_text(const models::MemoryPlan& plan, size_t total) {
  const size_t need = plan.weight_bytes() + plan.workspace_bytes;
  if (need >= total) return fmt::format("does not fit: weights + workspace need {}", format_bytes(need));
  const models::KvFit f = models::fit_total_memory(plan, total);
  if (f.max_model_len == 0)
    return fmt::format("KV {} holds {} tokens: no room for a request", format_bytes(f.kv_bytes), f.kv_tokens);
  return fmt::format("KV {} -> {} tokens, max_model_len {}", format_bytes(f.kv_bytes), f.kv_tokens,
                     f.max_model_len);
}

/// Memory that holds the weights, the workspace and one request of max_position_embeddings tokens.
size_t full_request_bytes(const models::MemoryPlan& plan) {
  const int64_t tokens = (plan.max_position_embeddings + plan.request_slack + plan.block_size - 1) /
                         plan.block_size * plan.block_size;
  return plan.weight_bytes() + plan.workspace_bytes + plan.kv_fixed_bytes +
         static_cast<size_t>(tokens) * plan.kv_bytes_per_token();
}

nlohmann::ordered_json fit_json(const models::MemoryPlan& plan, size_t total) {
  const models::KvFit f = models::fit_total_memory(plan, total);
  return {{"weights_fit", plan.weight_bytes() + plan.workspace_bytes < total},
          {"kv_bytes", f.kv_bytes},
          {"kv_tokens", f.kv_tokens},
          {"max_model_len", f.max_model_len}};
}

}  // namespace

int run_inspect_plan(const PlanRequest& r) {
  const std::filesystem::path dir(r.model);
  const nlohmann::json overrides = models::parse_config_overrides(r.model_overrides);
  nlohmann::json config = read_json(dir / "config.json");
  loader::merge_config_overrides(config, overrides);
  std::set<std::string> keys_read;
  const auto c = models::glm4_moe::Glm4MoeConfig::from_hf(config, &keys_read);
  const auto quant = loader::QuantConfig::from_hf(config);
  models::check_config_overrides(overrides, keys_read);
  models::MemoryPlanOptions o{.kv_dtype = kv::parse_kv_cache_dtype(r.kv_cache_dtype),
                              .with_draft = false,
                              .draft_own_embed_head = false,
                              .weight_dtype = models::weight_dtype_from_config(config),
                              .max_running_requests = r.max_running_requests,
                              .spec_num_steps = r.spec_num_steps};
  const models::MemoryPlan plain = models::plan_memory(c, quant, o);
  o.with_draft = true;
  o.draft_own_embed_head = draft_owns_embed_head(dir, c.num_hidden_layers);
  const models::MemoryPlan spec = models::plan_memory(c, quant, o);

  std::vector<std::pair<std::string, size_t>> budgets;
  for (const std::string& m :
       r.memory.empty() ? std::vector<std::string>{"24GiB", "80GiB", "141GiB"} : r.memory)
    budgets.emplace_back(m, models::parse_byte_size(m, "--memory"));

  const std::string kv_name(kv::kv_cache_dtype_name(o.kv_dtype));
  const std::string weights_name = quant.method == loader::QuantMethod::kNone
                                       ? std::string(dtype_name(o.weight_dtype))
                                       : models::mtp::scheme_name(quant) + " (unquantized parts " +
                                             std::string(dtype_name(o.weight_dtype)) + ")";
  if (r.json) {
    nlohmann::ordered_json j;
    j["model"] = dir.string();
    j["weights_dtype"] = weights_name;
    j["kv_cache_dtype"] = kv_name;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["target"] = {{"params", plain.target.params},
                   {"active_params", plain.target_active_params},
                   {"weight_bytes", plain.target.bytes},
                   {"kv_layers", plain.n_target_kv_layers},
                   {"kv_bytes_per_token", plain.kv_bytes_per_token_target}};
    if (spec.has_draft)
      j["draft"] = {{"params", spec.draft.params},
                    {"weight_bytes", spec.draft.bytes},
                    {"own_embed_head", o.draft_own_embed_head},
                    {"kv_layers", spec.n_draft_kv_layers},
                    {"kv_bytes_per_token", spec.kv_bytes_per_token_draft}};
    j["kv_fixed_bytes"] = spec.kv_fixed_bytes;
    j["workspace_bytes"] = plain.workspace_bytes;
    j["full_request_bytes"] = {{"target_only", full_request_bytes(plain)},
                               {"with_draft", full_request_bytes(spec)}};
    for (const auto& [name, bytes] : budgets) {
      nlohmann::ordered_json b = {
          {"memory", name}, {"bytes", bytes}, {"target_only", fit_json(plain, bytes)}};
      if (spec.has_draft) b["with_draft"] = fit_json(spec, bytes);
      j["budgets"].push_back(b);
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("model        {} (planned from config.json; no weights read)\n", dir.string());
  std::cout << fmt::format(
      "config       Glm4MoeForCausalLM H={} L={} heads={}/{}x{} experts={} top-{} shared={} V={} "
      "max_position_embeddings={}\n",
      c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim,
      c.n_routed_experts, c.num_experts_per_tok, c.n_shared_experts, c.vocab_size, c.max_position_embeddings);
  std::cout << fmt::format("weights      {}\n", weights_name);
  std::cout << fmt::format("  target     {:.2f}B params ({:.2f}B active per token), {}\n",
                           plain.target.params / 1e9, plain.target_active_params / 1e9,
                           format_bytes(plain.target.bytes));
  if (spec.has_draft)
    std::cout << fmt::format("  draft      {:.2f}B params (NextN layer {}, {}), {}\n",
                             spec.draft.params / 1e9, c.num_hidden_layers,
                             o.draft_own_embed_head ? "own embed/head" : "embed/head shared",
                             format_bytes(spec.draft.bytes));
  else
    std::cout << "  draft      none (no NextN layer in config.json)\n";
  std::cout << fmt::format(
      "kv cache     {}: {} bytes per token for the target ({} layers x K,V x {} heads x {} x {} B)", kv_name,
      plain.kv_bytes_per_token_target, plain.n_target_kv_layers, c.num_key_value_heads, c.head_dim,
      dtype_size(o.kv_dtype));
  if (spec.has_draft) std::cout << fmt::format(" + {} for the draft", spec.kv_bytes_per_token_draft);
  std::cout << fmt::format(" = {} with the draft\n", format_bytes(spec.kv_bytes_per_token()));
  if (spec.kv_fixed_bytes > 0)
    std::cout << fmt::format(
        "             plus {} B of fp8 scales (f32 per layer and kv head; 1.0 unless the "
        "checkpoint has k_scale / v_scale)\n",
        spec.kv_fixed_bytes);
  std::cout << fmt::format(
      "workspace    {} reserve (activation estimate for {} requests, 512 batch tokens, plus "
      "512 MiB; not a measured peak)\n",
      format_bytes(plain.workspace_bytes), r.max_running_requests);
  std::cout << fmt::format("one request  of max_position_embeddings {} needs {} (target only){}\n",
                           c.max_position_embeddings, format_bytes(full_request_bytes(plain)),
                           spec.has_draft
                               ? fmt::format(", {} with the draft", format_bytes(full_request_bytes(spec)))
                               : std::string());
  for (const auto& [name, bytes] : budgets) {
    std::cout << fmt::format("memory {:<7} target only: {}\n", name, fit_text(plain, bytes));
    if (spec.has_draft)
      std::cout << fmt::format("memory {:<7} with draft:  {}\n", name, fit_text(spec, bytes));
  }
  return 0;
}

}  // namespace tandem::app
