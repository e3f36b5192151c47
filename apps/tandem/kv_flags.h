// KV cache flags shared by `serve`, `generate` and `bench` (vLLM's names): --kv-cache-dtype everywhere, and
// the budget flags --kv-cache-memory and --mem-fraction where the engine sizes its cache itself (`serve`), and
// --enable-prefix-caching / --disable-prefix-caching where requests share prefixes (`serve`).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "engine/engine.h"

namespace tandem::app {

struct KvFlags {
  std::string kv_cache_dtype = "auto";  // auto | bf16 | bfloat16 | fp8_e4m3 | fp8 | float32
  std::string kv_cache_memory;          // e.g. "8GiB"; empty: mem_fraction of MemAvailable
  double mem_fraction = 0.9;
  bool prefix_caching = true;           // --enable-prefix-caching / --disable-prefix-caching (vLLM's default: on)

  void add_dtype(CLI::App& cmd);
  void add_budget(CLI::App& cmd);
  void add_prefix_caching(CLI::App& cmd);
  /// Validates and copies the dtype and budget flags into `eo`; throws tandem::Error naming the flag. (Prefix
  /// caching is serve's alone: `generate` and `bench` time prefill, so they never reuse it.)
  void apply(engine::EngineOptions& eo) const;
  /// Throws what apply() would, before any slow work (model loading) starts.
  void validate() const {
    engine::EngineOptions eo;
    apply(eo);
  }
};

}  // namespace tandem::app
