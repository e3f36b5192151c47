// Memory planning without loading weights: what a Glm4Moe checkpoint and its NextN draft occupy, how many KV
// tokens a memory budget holds once the weights and a workspace reserve are paid, and the context length that
// leaves for one request. Pure functions of config.json (with its quantization_config) and a few engine
// settings, so `tandem inspect --plan` works on a folder that holds only config.json, and the engine sizes
// its cache from the same per-token numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/dtype.h"
#include "loader/quant_config.h"
#include "models/glm4_moe/config.h"

namespace tandem::models {

struct MemoryPlanOptions {
  DType kv_dtype = DType::kBF16;      // --kv-cache-dtype (auto = bf16)
  bool with_draft = true;             // count the NextN layer as a draft (weights + one KV layer) if present
  bool draft_own_embed_head = false;  // the NextN layer stores its own embed_tokens / shared_head.head
  DType weight_dtype = DType::kBF16;  // unquantized weight elements (weight_dtype_from_config)
  int block_size = 16;                // KV block size (tokens)
  int max_running_requests = 16;      // rows of logits a verify step produces: requests x (K + 1)
  int64_t max_batch_tokens = 512;     // rows of one target forward (activation buffers)
  int spec_num_steps = 3;             // K: a request reserves K + 1 KV slots beyond its context
};

/// Parameter and byte counts of a set of weights.
struct WeightCount {
  int64_t params = 0;  // elements of weights, biases, norms and embeddings (fp8 scales excluded)
  size_t bytes = 0;    // as tandem holds them: fp8 weights 1 B + f32 scales, the rest at weight_dtype
};

struct MemoryPlan {
  WeightCount target;                // embed_tokens, L decoder layers, final norm, lm_head
  WeightCount draft;                 // the NextN layer (zero without a draft); shares the target's embed/head
  int64_t target_active_params = 0;  // weights one decoded token reads (K routed experts per MoE layer)
  bool has_draft = false;            // with_draft and the config declares a NextN layer
  int n_target_kv_layers = 0;
  int n_draft_kv_layers = 0;
  DType kv_dtype = DType::kBF16;
  size_t kv_bytes_per_token_target = 0;  // L x 2 (K, V) x Hkv x D x sizeof(kv_dtype)
  size_t kv_bytes_per_token_draft = 0;   // the same for the draft's layer (a block id indexes both caches)
  size_t kv_fixed_bytes = 0;             // fp8: the k and v scales, f32 per (layer, kv head)
  size_t workspace_bytes = 0;            // activation / workspace reserve (estimate_workspace_bytes)
  int64_t max_position_embeddings = 0;
  int block_size = 16;
  int64_t request_slack = 0;  // KV slots one request needs beyond its context (K + 1 draft / verify rows)

  size_t weight_bytes() const { return target.bytes + draft.bytes; }
  size_t kv_bytes_per_token() const { return kv_bytes_per_token_target + kv_bytes_per_token_draft; }
};

/// What a KV byte budget buys.
struct KvFit {
  size_t kv_bytes = 0;        // the budget for K/V (scales included)
  int64_t kv_tokens = 0;      // cache capacity, in whole blocks
  int64_t max_model_len = 0;  // min(max_position_embeddings, kv_tokens - request_slack); 0: not even 2 tokens
};

/// Weights, KV bytes per token and the workspace reserve for `config` and its quantization. Throws
/// tandem::Error for option values that make no sense (block size < 1, an unsupported KV dtype).
[[nodiscard]] MemoryPlan plan_memory(const glm4_moe::Glm4MoeConfig& config, const loader::QuantConfig& quant,
                                     const MemoryPlanOptions& options);

/// The activation / workspace reserve alone (MemoryPlan::workspace_bytes): an estimate from the f32 buffers
/// one forward allocates for max_batch_tokens rows, the logits of a full verify step, and 512 MiB of fixed
/// overhead.
[[nodiscard]] size_t estimate_workspace_bytes(const glm4_moe::Glm4MoeConfig& config,
                                              const MemoryPlanOptions& options);

/// The cache that `kv_bytes` of K/V memory holds, and the longest request that fits it.
[[nodiscard]] KvFit fit_kv_bytes(const MemoryPlan& plan, size_t kv_bytes);

/// The same for a device (or host) of `total_bytes`: K/V gets what the weights and the workspace reserve
/// leave; kv_bytes is 0 when they do not fit.
[[nodiscard]] KvFit fit_total_memory(const MemoryPlan& plan, size_t total_bytes);

/// What sizes the KV cache when an engine starts (see size_kv_cache).
struct KvBudgetRequest {
  int64_t kv_cache_tokens = 0;    // --kv-cache-tokens: the capacity itself; 0: from a byte budget
  size_t kv_cache_memory = 0;     // --kv-cache-memory: bytes for K/V; 0: from host memory
  size_t host_available = 0;      // host memory available at start-up
  double mem_fraction = 0.9;      // --mem-fraction: share of host_available for weights, workspace and K/V
  size_t weight_bytes = 0;        // resident weights
  size_t workspace_bytes = 0;     // estimate_workspace_bytes
  size_t kv_bytes_per_token = 0;  // K + V of the target's layers and the draft's (one block id indexes both)
  size_t kv_fixed_bytes = 0;      // fp8 scales
  int block_size = 16;
  int max_running_requests = 16;
  int64_t max_model_len = 0;  // the context asked for (--max-model-len, else max_position_embeddings)
  int64_t request_slack = 4;  // KV slots a request needs beyond its context (K + 1)
};

struct KvBudget {
  int64_t kv_tokens = 0;      // cache capacity, whole blocks
  int64_t max_model_len = 0;  // the request's, or lowered to what one request can use of kv_tokens
  bool lowered = false;
  std::string source;  // how the capacity was derived, for the start-up log
};

/// The KV capacity: kv_cache_tokens if set; else the blocks that fit kv_cache_memory, or mem_fraction x
/// host_available minus the weights and the workspace; never more than max_running_requests full-length
/// requests need. When one request of max_model_len does not fit, max_model_len is lowered to what does
/// (vLLM refuses to start there; tandem starts and says so). Throws tandem::Error, naming the flags to
/// change, when not one block or not a 2-token request fits.
[[nodiscard]] KvBudget size_kv_cache(const KvBudgetRequest& request);

/// The element type of a checkpoint's unquantized weights: config.json "dtype" (newer transformers) or
/// "torch_dtype"; bf16 when neither is present (the GLM-4.x releases). Throws for other spellings.
[[nodiscard]] DType weight_dtype_from_config(const nlohmann::json& config);

/// Parses a byte size: a number with an optional unit, e.g. "80GiB", "24 GB", "512MiB", "1e9", "4096".
/// Binary units (KiB, MiB, GiB, TiB; also K/M/G/T) are powers of 1024, decimal ones (KB, MB, GB, TB) of
/// 1000. Throws tandem::Error naming `what` for anything else.
[[nodiscard]] size_t parse_byte_size(const std::string& text, const std::string& what);

/// "1.50 GiB", "736.0 KiB", "12 B": a byte count for people.
[[nodiscard]] std::string format_bytes(double bytes);

}  // namespace tandem::models
