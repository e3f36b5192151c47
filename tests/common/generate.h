// Runs requests through one engine to completion and collects each request's tokens (the engine-level spec
// tests: spec_decode_test, seeded_identity_test).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/engine.h"

namespace tandem::test {

struct GenRun {
  std::vector<std::vector<int32_t>> outputs;   // per request: every token emitted, in order
  std::vector<engine::RequestOutput> finals;   // per request: its last (finished) output
};

/// Submits every request to a fresh engine over `m` and runs until idle.
inline GenRun generate(models::LoadedModel& m, ops::Backend& be, const engine::EngineOptions& eo,
                       const std::vector<engine::GenerateRequest>& reqs) {
  engine::Engine eng(m, be, eo);
  GenRun r;
  r.outputs.resize(reqs.size());
  r.finals.resize(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i)
    eng.submit(reqs[i], [&r, i](const engine::RequestOutput& o) {
      r.outputs[i].insert(r.outputs[i].end(), o.new_tokens.begin(), o.new_tokens.end());
      if (o.finished()) r.finals[i] = o;
    });
  eng.run_until_idle();
  return r;
}

}  // namespace tandem::test
