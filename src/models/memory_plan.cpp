#include "models/memory_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include "core/error.h"

namespace tandem::models {

namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

/// Adds modules by their checkpoint names, deciding per Linear whether the quantization_config quantizes it
/// (QuantConfig::quantizes, the rule --load-format dummy makes its weights by).
class WeightCounter {
 public:
  WeightCounter(const loader::QuantConfig& q, DType weight_dtype) : q_(q), elem_(dtype_size(weight_dtype)) {}

  /// A plain tensor (norm, embedding, router) of n elements at the weight dtype.
  void tensor(int64_t n) { add(n, static_cast<size_t>(n) * elem_); }
  /// An f32 tensor of n elements (e_score_correction_bias: the loader keeps it in f32).
  void f32_tensor(int64_t n) { add(n, static_cast<size_t>(n) * 4); }
  /// nn.Linear `name` [out, in] (+ bias [out]).
  void linear(const std::string& name, int64_t out, int64_t in, bool bias) {
    if (bias) tensor(out);
    if (!q_.quantizes(name)) {
      tensor(out * in);
      return;
    }
    int64_t scales = 1;  // tandem holds every fp8 scale as f32 (weight_map.cpp)
    switch (q_.weight_strategy) {
      case loader::WeightStrategy::kTensor:
        scales = 1;
        break;
      case loader::WeightStrategy::kChannel:
        scales = out;
        break;
      case loader::WeightStrategy::kBlock:
        scales = ceil_div(out, q_.block_out) * ceil_div(in, q_.block_in);
        break;
    }
    add(out * in, static_cast<size_t>(out * in) + static_cast<size_t>(scales) * 4);
  }

  WeightCount take() {
    const WeightCount c = count_;
    count_ = {};
    return c;
  }

 private:
  void add(int64_t params, size_t bytes) {
    count_.params += params;
    count_.bytes += bytes;
  }
  const loader::QuantConfig& q_;
  size_t elem_;
  WeightCount count_;
};

/// One SwiGLU MLP (dense, shared or routed expert) of width `inter`.
void count_mlp(WeightCounter& w, const std::string& p, int64_t inter, int64_t H) {
  w.linear(p + "gate_proj", inter, H, false);
  w.linear(p + "up_proj", inter, H, false);
  w.linear(p + "down_proj", H, inter, false);
}

/// One decoder layer (models/glm4_moe/weights.cpp's name table). `active`: count K routed experts only.
void count_layer(WeightCounter& w, const glm4_moe::Glm4MoeConfig& c, int layer, bool moe, bool active) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  w.tensor(H);  // input_layernorm
  w.tensor(H);  // post_attention_layernorm
  w.linear(p + "self_attn.q_proj", Hq * D, H, c.attention_bias);
  w.linear(p + "self_attn.k_proj", Hkv * D, H, c.attention_bias);
  w.linear(p + "self_attn.v_proj", Hkv * D, H, c.attention_bias);
  w.linear(p + "self_attn.o_proj", H, Hq * D, false);
  if (c.use_qk_norm) w.tensor(2 * D);
  if (!moe) {
    count_mlp(w, p + "mlp.", c.intermediate_size, H);
    return;
  }
  w.tensor(int64_t{c.n_routed_experts} * H);  // mlp.gate: not an nn.Linear, never quantized
  w.f32_tensor(c.n_routed_experts);           // mlp.gate.e_score_correction_bias
  const int n_experts = active ? c.num_experts_per_tok : c.n_routed_experts;
  for (int e = 0; e < n_experts; ++e)
    count_mlp(w, p + "mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size, H);
  if (c.n_shared_experts > 0)
    count_mlp(w, p + "mlp.shared_experts.", c.moe_intermediate_size * c.n_shared_experts, H);
}

}  // namespace

// Fixed part of the workspace reserve: thread pools and stacks, tokenizer, HTTP server, allocator slack.
constexpr size_t kFixedReserveBytes = size_t{512} << 20;
// The CPU MoE kernel's intermediate buffer cap (ops/cpu/cpu_ops.h kMoeMaxHiddenFloats), in floats.
constexpr int64_t kMoeHiddenCapFloats = int64_t{1} << 25;

// An estimate of the largest activation footprint, from the f32 buffers one forward allocates (decoder
// layer, attention, MoE, logits): per batch row, the residual stream, captured hidden, normed input and
// layer delta (4H), the larger of attention's q / out / k / v (2 Hq D + 2 Hkv D) and the MoE router's
// buffers (E + 2K + 2H), and the expert intermediates (3 max(K Im, I), capped as the MoE kernel caps them);
// then the logits of a full verify step for the target and the draft (2 x requests x (K + 1) x V); plus
// kFixedReserveBytes. Not a measured peak: the engine does not profile a dummy forward as vLLM does.
size_t estimate_workspace_bytes(const glm4_moe::Glm4MoeConfig& c, const MemoryPlanOptions& o) {
  const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const int64_t T = o.max_batch_tokens, K = c.num_experts_per_tok;
  const int64_t per_row = 4 * H + std::max(2 * Hq * D + 2 * Hkv * D, c.n_routed_experts + 2 * K + 2 * H);
  const int64_t inter =
      std::min(3 * T * std::max(K * c.moe_intermediate_size, c.intermediate_size), 3 * kMoeHiddenCapFloats);
  const int64_t logits = 2 * int64_t{o.max_running_requests} * (o.spec_num_steps + 1) * c.vocab_size;
  return static_cast<size_t>(T * per_row + inter + logits) * sizeof(float) + kFixedReserveBytes;
}

MemoryPlan plan_memory(const glm4_moe::Glm4MoeConfig& c, const loader::QuantConfig& quant,
                       const MemoryPlanOptions& o) {
  TANDEM_CHECK(
      o.block_size >= 1 && o.max_running_requests >= 1 && o.max_batch_tokens >= 1 && o.spec_num_steps >= 0,
      "memory plan: block size {}, {} requests, {} batch tokens, {} draft steps", o.block_size,
      o.max_running_requests, o.max_batch_tokens, o.spec_num_steps);
  TANDEM_CHECK(o.kv_dtype == DType::kF32 || o.kv_dtype == DType::kBF16 || o.kv_dtype == DType::kF8E4M3,
               "memory plan: KV cache dtype {} is not one of F32, BF16, F8_E4M3", dtype_name(o.kv_dtype));
  const int64_t H = c.hidden_size, V = c.vocab_size;
  MemoryPlan plan;
  WeightCounter w(quant, o.weight_dtype);

  // Target: embed_tokens, layers, model.norm, lm_head.
  w.tensor(V * H);
  for (int l = 0; l < c.num_hidden_layers; ++l) count_layer(w, c, l, c.is_moe_layer(l), false);
  w.tensor(H);
  w.linear("lm_head", V, H, false);
  plan.target = w.take();

  // Active per decoded token: one embedding row, every layer with K routed experts, the norm and lm_head.
  w.tensor(H);
  for (int l = 0; l < c.num_hidden_layers; ++l) count_layer(w, c, l, c.is_moe_layer(l), true);
  w.tensor(H);
  w.linear("lm_head", V, H, false);
  plan.target_active_params = w.take().params;

  // Draft: the NextN layer model.layers.{L} (models/glm4_moe/nextn.cpp): enorm, hnorm, eh_proj, a MoE
  // decoder layer, shared_head.norm; embed_tokens / shared_head.head only when the checkpoint has copies.
  plan.has_draft = o.with_draft && c.num_nextn_predict_layers > 0;
  if (plan.has_draft) {
    const int N = c.num_hidden_layers;
    const std::string p = "model.layers." + std::to_string(N) + ".";
    w.tensor(2 * H);  // enorm, hnorm
    w.linear(p + "eh_proj", H, 2 * H, false);
    count_layer(w, c, N, true, false);
    w.tensor(H);  // shared_head.norm
    if (o.draft_own_embed_head) {
      w.tensor(V * H);
      w.linear(p + "shared_head.head", V, H, false);
    }
    plan.draft = w.take();
  }

  plan.kv_dtype = o.kv_dtype;
  plan.n_target_kv_layers = c.num_hidden_layers;
  plan.n_draft_kv_layers = plan.has_draft ? c.num_nextn_predict_layers : 0;
  const size_t per_layer = 2ull * c.num_key_value_heads * c.head_dim * dtype_size(o.kv_dtype);
  plan.kv_bytes_per_token_target = per_layer * plan.n_target_kv_layers;
  plan.kv_bytes_per_token_draft = per_layer * plan.n_draft_kv_layers;
  if (o.kv_dtype == DType::kF8E4M3)
    plan.kv_fixed_bytes =
        2ull * (plan.n_target_kv_layers + plan.n_draft_kv_layers) * c.num_key_value_heads * sizeof(float);
  plan.workspace_bytes = estimate_workspace_bytes(c, o);
  plan.max_position_embeddings = c.max_position_embeddings;
  plan.block_size = o.block_size;
  plan.request_slack = o.spec_num_steps + 1;
  return plan;
}

KvFit fit_kv_bytes(const MemoryPlan& plan, size_t kv_bytes) {
  KvFit f;
  f.kv_bytes = kv_bytes;
  const size_t per_block = plan.kv_bytes_per_token() * static_cast<size_t>(plan.block_size);
  if (kv_bytes > plan.kv_fixed_bytes && per_block > 0)
    f.kv_tokens = static_cast<int64_t>((kv_bytes - plan.kv_fixed_bytes) / per_block) * plan.block_size;
  const int64_t len = std::min(plan.max_position_embeddings, f.kv_tokens - plan.request_slack);
  f.max_model_len = len >= 2 ? len : 0;
  return f;
}

KvFit fit_total_memory(const MemoryPlan& plan, size_t total_bytes) {
  const size_t used = plan.weight_bytes() + plan.workspace_bytes;
  return fit_kv_bytes(plan, total_bytes > used ? total_bytes - used : 0);
}

KvBudget size_kv_cache(const KvBudgetRequest& r) {
  TANDEM_CHECK(r.block_size >= 1 && r.kv_bytes_per_token > 0 && r.max_model_len >= 1 && r.request_slack >= 1,
               "KV sizing: block size {}, {} bytes per token, max_model_len {}, slack {}", r.block_size,
               r.kv_bytes_per_token, r.max_model_len, r.request_slack);
  if (!(r.mem_fraction > 0.0 && r.mem_fraction <= 1.0))
    fail("--mem-fraction must be in (0, 1], got {}", r.mem_fraction);
  const int64_t bs = r.block_size;
  KvBudget b;
  b.max_model_len = r.max_model_len;
  b.kv_tokens = r.kv_cache_tokens;
  b.source = "--kv-cache-tokens";
  if (b.kv_tokens <= 0) {
    size_t budget = r.kv_cache_memory;
    b.source = "--kv-cache-memory " + format_bytes(static_cast<double>(budget));
    if (budget == 0) {
      const double usable = r.mem_fraction * static_cast<double>(r.host_available) -
                            static_cast<double>(r.weight_bytes) - static_cast<double>(r.workspace_bytes);
      budget = usable > 0 ? static_cast<size_t>(usable) : 0;
      b.source = fmt::format("{} x host {} - weights {} - workspace {}", r.mem_fraction,
                             format_bytes(static_cast<double>(r.host_available)),
                             format_bytes(static_cast<double>(r.weight_bytes)),
                             format_bytes(static_cast<double>(r.workspace_bytes)));
    }
    const size_t per_block = r.kv_bytes_per_token * static_cast<size_t>(bs);
    b.kv_tokens =
        budget > r.kv_fixed_bytes ? static_cast<int64_t>((budget - r.kv_fixed_bytes) / per_block) * bs : 0;
    const int64_t useful =
        (int64_t{r.max_running_requests} * (r.max_model_len + r.request_slack) + bs - 1) / bs * bs;
    if (b.kv_tokens > useful) {
      b.kv_tokens = useful;
      b.source += fmt::format(", capped at {} requests x {} tokens", r.max_running_requests,
                              r.max_model_len + r.request_slack);
    }
    if (b.kv_tokens < bs)
      fail(
          "the KV budget ({}) holds no block of {} tokens at {} per token; raise --kv-cache-memory or "
          "--mem-fraction, or free memory",
          b.source, bs, format_bytes(static_cast<double>(r.kv_bytes_per_token)));
  }
  b.kv_tokens = (b.kv_tokens + bs - 1) / bs * bs;
  if (b.kv_tokens < r.max_model_len + r.request_slack) {
    b.max_model_len = b.kv_tokens - r.request_slack;
    b.lowered = true;
    if (b.max_model_len < 2)
      fail("a KV cache of {} tokens ({}) cannot hold a request of 2 tokens plus {} draft slots", b.kv_tokens,
           b.source, r.request_slack - 1);
  }
  return b;
}

DType weight_dtype_from_config(const nlohmann::json& config) {
  for (const char* key : {"dtype", "torch_dtype"}) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) continue;
    const std::string s = it->is_string() ? it->get<std::string>() : it->dump();
    if (s == "bfloat16") return DType::kBF16;
    if (s == "float16") return DType::kF16;
    if (s == "float32") return DType::kF32;
    fail("config.json: '{}' is {}; expected bfloat16, float16 or float32", key, s);
  }
  return DType::kBF16;
}

size_t parse_byte_size(const std::string& text, const std::string& what) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    fail("{} '{}': expected a size such as 80GiB, 24GB, 512MiB or a byte count", what, text);
  }
  std::string unit = text.substr(pos);
  unit.erase(std::remove_if(unit.begin(), unit.end(), [](unsigned char ch) { return std::isspace(ch); }),
             unit.end());
  std::string u;
  for (char ch : unit) u += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double mult = 0;
  if (u.empty() || u == "b")
    mult = 1;
  else if (u == "k" || u == "kib")
    mult = 0x1p10;
  else if (u == "m" || u == "mib")
    mult = 0x1p20;
  else if (u == "g" || u == "gib")
    mult = 0x1p30;
  else if (u == "t" || u == "tib")
    mult = 0x1p40;
  else if (u == "kb")
    mult = 1e3;
  else if (u == "mb")
    mult = 1e6;
  else if (u == "gb")
    mult = 1e9;
  else if (u == "tb")
    mult = 1e12;
  if (mult == 0 || !std::isfinite(value) || value < 0 || value * mult > 0x1p62)
    fail("{} '{}': expected a size such as 80GiB, 24GB, 512MiB or a byte count", what, text);
  return static_cast<size_t>(std::llround(value * mult));
}

std::string format_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::abs(bytes) >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.2f} {}", bytes, kUnits[u]);
}

}  // namespace tandem::models
