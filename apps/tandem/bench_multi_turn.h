// `tandem bench serve --multi-turn N --shared-prefix-len L`: conversations that grow turn by turn over one
// shared system prompt, the traffic prefix caching is for. Each of --requests conversations runs its N turns in
// order (--concurrency conversations at once); turn t sends the shared prefix, every earlier turn's user tokens
// and the model's real answer (its output_ids), then t's own --input-len user tokens, through SGLang's streaming
// /generate. Prints TTFT per turn, throughput, and the server's prefix-cache hit rate over the run; run it
// against a server with and without --disable-prefix-caching to see what the cache saves.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::app {

struct MultiTurnOptions {
  std::string base;  // http://host:port
  int conversations = 8;
  int turns = 4;
  int shared_prefix_len = 0;
  int input_len = 64;   // user tokens per turn
  int output_len = 32;  // answer tokens per turn (ignore_eos)
  int concurrency = 1;
  uint64_t seed = 0;
  double temperature = 0.0;
  double timeout_s = 600.0;
  bool json = false;
  int64_t vocab = 0;
  std::vector<int32_t> eos;  // excluded from the random tokens
};

/// Runs the workload and prints its results; returns 0 when every request succeeded.
int run_multi_turn(const MultiTurnOptions& o);

}  // namespace tandem::app
