#include "kv_flags.h"

#include "kv/kv_dtype.h"
#include "models/memory_plan.h"

namespace tandem::app {

void KvFlags::add_dtype(CLI::App& cmd) {
  cmd.add_option("--kv-cache-dtype", kv_cache_dtype,
                 "KV cache element type: auto (= bf16), bf16, fp8_e4m3 (fp8), float32")
      ->capture_default_str();
}

void KvFlags::add_budget(CLI::App& cmd) {
  cmd.add_option("--kv-cache-memory,--kv-cache-memory-bytes", kv_cache_memory,
                 "bytes for the KV cache, e.g. 8GiB (default: --mem-fraction of available memory, less "
                 "weights and workspace)");
  cmd.add_option("--mem-fraction", mem_fraction,
                 "share of MemAvailable that weights, workspace and KV cache may use (KV sizing)")
      ->capture_default_str();
}

void KvFlags::add_prefix_caching(CLI::App& cmd) {
  cmd.add_flag("--enable-prefix-caching,!--disable-prefix-caching", prefix_caching,
               "reuse the KV (target and draft) of prompt prefixes earlier requests computed (default: on)");
}

void KvFlags::apply(engine::EngineOptions& eo) const {
  eo.kv_cache_dtype = kv::parse_kv_cache_dtype(kv_cache_dtype);
  eo.kv_cache_memory =
      kv_cache_memory.empty() ? 0 : models::parse_byte_size(kv_cache_memory, "--kv-cache-memory");
  if (!kv_cache_memory.empty() && eo.kv_cache_memory == 0) fail("--kv-cache-memory must be > 0");
  if (!(mem_fraction > 0.0 && mem_fraction <= 1.0))
    fail("--mem-fraction must be in (0, 1], got {}", mem_fraction);
  eo.mem_fraction = mem_fraction;
}

}  // namespace tandem::app
