// Engine-internal state of one request.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/request.h"
#include "kv/block_table.h"
#include "kv/prefix_cache.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"
#include "spec/acceptance.h"

namespace tandem::engine {

struct Sequence {
  uint64_t id = 0;
  GenerateRequest req;
  OutputCallback callback;
  std::vector<int32_t> tokens;     // prompt + committed output
  int64_t n_prompt = 0;
  int64_t n_cached = 0;            // target KV valid for positions [0, n_cached)
  int64_t n_draft_cached = 0;      // draft KV (from target hidden states) valid for [0, n_draft_cached)
  kv::BlockTable blocks;
  sampling::CounterRng rng;        // output position i samples with rng.uniform(i)
  sampling::TokenHistory history;
  std::vector<int32_t> drafts;     // proposals for the next verify pass (empty: none yet)
  SpecStats spec;
  uint64_t admit_order = 0;        // for preemption: the newest admitted goes first
  bool speculative = false;        // this request runs with the draft
  spec::AcceptanceEstimate accept; // per-position acceptance (the adaptive policy's evidence)
  int64_t draft_decisions = 0;     // draft lengths chosen so far (indexes a scripted K schedule)
  bool draft_dropped = false;      // no draft state any more: the request decodes plainly to its end (adaptive)
  bool draft_decided = false;      // the adaptive policy has decided whether this request keeps a draft state
  bool probe = false;              // kept a draft state to probe while paused: its first decision drafts >= 1
  int stash_slot = -1;             // HiddenStash slot, -1: none
  int64_t n_stashed = 0;           // draft pairs at [n_draft_cached, n_draft_cached + n_stashed) kept in the stash
  kv::PrefixCursor prefix;         // what this sequence published to the prefix cache
  int64_t cached_tokens = 0;       // prompt tokens its first admission found in the prefix cache (usage)
  bool admitted_once = false;

  Sequence(uint64_t id_, GenerateRequest r, OutputCallback cb, int block_size, uint64_t seed)
      : id(id_), req(std::move(r)), callback(std::move(cb)), blocks(block_size), rng(seed) {
    tokens = req.prompt;
    n_prompt = static_cast<int64_t>(tokens.size());
    for (int32_t t : req.prompt) ++history.prompt_counts[t];
  }
  int64_t n_output() const { return static_cast<int64_t>(tokens.size()) - n_prompt; }
  /// Tokens not yet run through the target: the whole prompt at first, one (the newest) while decoding.
  int64_t n_pending() const { return static_cast<int64_t>(tokens.size()) - n_cached; }
};

}  // namespace tandem::engine
