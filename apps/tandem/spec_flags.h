// Speculative-decoding and model flags shared by `generate`, `serve` and `bench` (SGLang's names).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "models/loaded_model.h"

namespace tandem::app {

struct ModelFlags {
  std::string model = "models/tandem-tiny";
  int threads = 0;
  std::string device = "auto";          // --device: auto | cpu | cuda | cuda:N | fake (the CI fake-device backend)
  std::string spec_algorithm;           // "", NEXTN, EAGLE, MTP
  int spec_num_steps = 3;               // default for Glm4Moe (SGLang's (3, 1, 4)); K max when adaptive
  std::string spec_policy = "adaptive";  // --speculative-policy fixed | adaptive
  std::vector<double> synthetic_acceptance;  // --speculative-synthetic-acceptance (bench only)
  int spec_eagle_topk = 1;
  int spec_num_draft_tokens = 0;        // 0: K + 1
  std::string draft_quant = "auto";
  std::string load_format = "auto";     // --load-format: auto | dummy (weights made from config.json alone)
  std::string model_overrides;          // --json-model-override-args: a JSON object over config.json

  void add(CLI::App& cmd);
  /// Validates the flag combination; throws tandem::Error with the flag's name.
  void validate() const;
  /// For `serve` and `generate`: refuses the benchmark-only flags (their output is not the target's).
  void refuse_bench_only(std::string_view command) const;
  bool speculative() const { return !spec_algorithm.empty(); }
  models::LoadOptions load_options() const;
  engine::SpecOptions spec_options() const;
};

}  // namespace tandem::app
