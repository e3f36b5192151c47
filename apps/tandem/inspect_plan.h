// `tandem inspect --plan`: the memory plan of a checkpoint folder from its config.json alone (no weights are
// read, so full-size configs plan on any machine): weights, KV bytes per token, and what fits in given
// amounts of memory, with and without the NextN draft.
#pragma once

#include <string>
#include <vector>

namespace tandem::app {

struct PlanRequest {
  std::string model;                // folder with config.json (tokenizer files and weights optional)
  std::string model_overrides;      // --json-model-override-args: a JSON object over config.json, or ""
  std::vector<std::string> memory;  // sizes ("80GiB"); empty: 24GiB, 80GiB, 141GiB
  std::string kv_cache_dtype = "auto";
  int max_running_requests = 16;
  int spec_num_steps = 3;
  bool json = false;
};

/// Prints the plan; returns the exit code. Throws tandem::Error for a bad config or flag.
int run_inspect_plan(const PlanRequest& request);

}  // namespace tandem::app
