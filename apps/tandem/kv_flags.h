// KV cache flags shared by `serve`, `generate` and `bench` (vLLM's names): --kv-cache-dtype everywhere, and
// the budget flags --kv-cache-memory and --mem-fraction where the engine sizes its cache itself (`serve`).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "engine/engine.h"

namespace tandem::app {

struct KvFlags {
  std::string kv_cache_dtype = "auto";  // auto | bf16 | bfloat16 | fp8_e4m3 | fp8 | float32
  std::string kv_cache_memory;          // e.g. "8GiB"; empty: mem_fraction of MemAvailable
  double mem_fraction = 0.9;

  void add_dtype(CLI::App& cmd);
  void add_budget(CLI::App& cmd);
  /// Validates and copies the flags into `eo`; throws tandem::Error naming the flag.
  void apply(engine::EngineOptions& eo) const;
  /// Throws what apply() would, before any slow work (model loading) starts.
  void validate() const {
    engine::EngineOptions eo;
    apply(eo);
  }
};

}  // namespace tandem::app
