// `tandem inspect`: what a checkpoint is, what tandem will load, and in which precision it will run.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <map>

#include "commands.h"
#include "inspect_plan.h"
#include "models/mtp/draft_precision.h"
#include "spec_flags.h"

namespace tandem::app {

namespace {

std::string quant_name(ops::WeightQuant q) {
  switch (q) {
    case ops::WeightQuant::kNone: return "";
    case ops::WeightQuant::kFp8Tensor: return "fp8/tensor";
    case ops::WeightQuant::kFp8Channel: return "fp8/channel";
    case ops::WeightQuant::kFp8Block: return "fp8/block";
  }
  return "?";
}

/// Module group of a Linear prefix, e.g. "model.layers.3.mlp.experts.7.up_proj" -> "routed experts".
std::string group_of(const std::string& prefix, const std::string& mtp_prefix) {
  const bool mtp = !mtp_prefix.empty() && prefix.rfind(mtp_prefix, 0) == 0;
  std::string g;
  if (prefix == "lm_head") g = "lm_head";
  else if (prefix.find(".self_attn.") != std::string::npos) g = "attention";
  else if (prefix.find(".mlp.experts.") != std::string::npos) g = "routed experts";
  else if (prefix.find(".mlp.shared_experts.") != std::string::npos) g = "shared experts";
  else if (prefix.ends_with(".mlp.gate")) g = "router";
  else if (prefix.find(".mlp.") != std::string::npos) g = "dense mlp";
  else if (prefix.ends_with("eh_proj")) g = "eh_proj";
  else if (prefix.ends_with("shared_head.head")) g = "shared_head.head";
  else g = "other";
  return mtp ? "mtp " + g : g;
}

int run_inspect(const ModelFlags& flags, bool json) {
  flags.validate();
  auto backend = ops::make_cpu_backend(1);
  models::LoadOptions lo = flags.load_options();
  lo.with_draft = true;  // inspect always shows the draft decision
  auto m = models::load_model(flags.model, lo, *backend);
  const auto& c = m->config;
  const auto& ck = *m->checkpoint;

  std::map<std::string, std::pair<int64_t, size_t>> dtypes;  // dtype -> (tensors, bytes)
  for (const auto& n : ck.tensor_names()) {
    const auto* t = ck.find(n);
    auto& e = dtypes[std::string(dtype_name(t->dtype))];
    e.first += 1;
    e.second += t->nbytes;
  }
  struct Group {
    std::map<std::string, int> stored, running;
    size_t bytes = 0;
    int count = 0;
  };
  std::map<std::string, Group> groups;
  for (const auto& r : m->linears) {
    Group& g = groups[group_of(r.prefix, m->mtp_prefix)];
    const std::string as_stored = std::string(dtype_name(r.stored)) +
                                  (r.quant != ops::WeightQuant::kNone ? " " + quant_name(r.quant) : "");
    g.stored[as_stored]++;
    g.running[r.dequantized ? std::string("BF16 (dequantized at load)") : as_stored]++;
    g.bytes += r.bytes;
    g.count++;
  }
  auto join = [](const std::map<std::string, int>& m) {
    std::string s;
    for (const auto& [k, n] : m) s += (s.empty() ? "" : ", ") + k + (m.size() > 1 ? fmt::format(" x{}", n) : "");
    return s;
  };

  nlohmann::ordered_json j;
  j["model"] = ck.dir().string();
  j["architecture"] = "Glm4MoeForCausalLM";
  j["config"] = {{"hidden_size", c.hidden_size},       {"num_hidden_layers", c.num_hidden_layers},
                 {"num_attention_heads", c.num_attention_heads}, {"num_key_value_heads", c.num_key_value_heads},
                 {"head_dim", c.head_dim},             {"vocab_size", c.vocab_size},
                 {"n_routed_experts", c.n_routed_experts}, {"num_experts_per_tok", c.num_experts_per_tok},
                 {"n_shared_experts", c.n_shared_experts}, {"first_k_dense_replace", c.first_k_dense_replace},
                 {"use_qk_norm", c.use_qk_norm},       {"partial_rotary_factor", c.partial_rotary_factor},
                 {"rope_theta", c.rope_theta},         {"num_nextn_predict_layers", c.num_nextn_predict_layers}};
  j["quantization"] = models::mtp::scheme_name(m->quant);
  j["files"] = ck.files();
  j["checkpoint_bytes"] = ck.total_bytes();
  for (const auto& [dt, e] : dtypes) j["tensor_dtypes"][dt] = {{"tensors", e.first}, {"bytes", e.second}};
  for (const auto& [name, g] : groups)
    j["linear_groups"][name] = {{"linears", g.count}, {"stored", join(g.stored)}, {"running", join(g.running)},
                                {"bytes", g.bytes}};
  j["mtp"] = {{"found", m->checkpoint_has_mtp},
              {"prefix", m->mtp_prefix},
              {"layout", m->draft ? m->draft->layout().family : ""},
              {"own_embed_tokens", m->draft && m->draft->has_own_embed()},
              {"own_shared_head", m->draft && m->draft->has_own_head()}};
  if (m->draft) j["draft"] = m->draft_precision.to_json();
  j["resident_weight_bytes"] = m->resident_weight_bytes();
  j["active_bytes_per_token"] = m->target->active_bytes_per_token();
  j["unused_tensors"] = m->unused_tensors;
  if (json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("model        {}\narchitecture Glm4MoeForCausalLM  quantization: {}\n", ck.dir().string(),
                           j["quantization"].get<std::string>());
  std::cout << fmt::format(
      "config       H={} L={} heads={}/{}x{} V={} experts={} top-{} shared={} dense-first={} qk_norm={} "
      "rope={}x{}\n",
      c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.vocab_size,
      c.n_routed_experts, c.num_experts_per_tok, c.n_shared_experts, c.first_k_dense_replace, c.use_qk_norm,
      c.partial_rotary_factor, c.rope_theta);
  std::cout << fmt::format("files        {} ({} tensors, {:.1f} MB)\n", ck.files().size(), ck.tensor_names().size(),
                           ck.total_bytes() / 1e6);
  for (const auto& [dt, e] : dtypes) std::cout << fmt::format("  dtype {:8} {:6} tensors {:10.1f} MB\n", dt, e.first, e.second / 1e6);
  std::cout << "linears      group: stored -> running (bytes)\n";
  for (const auto& [name, g] : groups)
    std::cout << fmt::format("  {:22} {:4} x  {} -> {}  ({:.2f} MB)\n", name, g.count, join(g.stored), join(g.running),
                             g.bytes / 1e6);
  std::cout << fmt::format("mtp          {}\n", m->checkpoint_has_mtp
                                                   ? fmt::format("{} at {}* (own embed: {}, own head: {})",
                                                                 m->draft->layout().family, m->mtp_prefix,
                                                                 m->draft->has_own_embed(), m->draft->has_own_head())
                                                   : std::string("none"));
  if (m->draft)
    std::cout << fmt::format("draft        runs {} (stored {}): {}\n", m->draft_precision.running,
                             m->draft_precision.stored, m->draft_precision.reason);
  std::cout << fmt::format("resident     {:.2f} MB of weights; {:.2f} MB read per decoded token\n",
                           m->resident_weight_bytes() / 1e6, m->target->active_bytes_per_token() / 1e6);
  if (!m->unused_tensors.empty()) std::cout << fmt::format("unused       {} tensors (see the warning above)\n", m->unused_tensors.size());
  return 0;
}

}  // namespace

Run add_inspect(CLI::App& app) {
  auto flags = std::make_shared<ModelFlags>();
  auto json = std::make_shared<bool>(false);
  auto plan = std::make_shared<bool>(false);
  auto req = std::make_shared<PlanRequest>();
  CLI::App* cmd = app.add_subcommand("inspect", "describe a checkpoint and what tandem will run");
  flags->add(*cmd);
  cmd->add_flag("--json", *json, "print JSON");
  cmd->add_flag("--plan", *plan, "memory plan from config.json alone (weights, KV per token, what fits)");
  cmd->add_option("--memory", req->memory,
                  "with --plan: memory sizes to plan for (default 24GiB 80GiB 141GiB)");
  cmd->add_option("--kv-cache-dtype", req->kv_cache_dtype,
                  "with --plan: auto (= bf16), bf16, fp8_e4m3, float32")
      ->capture_default_str();
  cmd->add_option("--max-running-requests", req->max_running_requests,
                  "with --plan: for the workspace estimate")
      ->capture_default_str();
  return [flags, json, plan, req] {
    if (!*plan) return run_inspect(*flags, *json);
    flags->validate();
    req->model = flags->model;
    req->model_overrides = flags->model_overrides;
    req->spec_num_steps = flags->spec_num_steps;
    req->json = *json;
    return run_inspect_plan(*req);
  };
}

}  // namespace tandem::app
