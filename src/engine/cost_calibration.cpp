#include "engine/cost_calibration.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "kv/block_table.h"

namespace tandem::engine {

namespace {

using Clock = std::chrono::steady_clock;

struct StepTime {
  double verify = 0, draft = 0;  // seconds
};

/// One synthetic step: `batch` sequences at positions 0..k verify k drafts, then draft k for the next step.
StepTime time_step(ModelRunner& runner, std::span<const kv::BlockTable> tables, int k) {
  const int64_t batch = static_cast<int64_t>(tables.size()), rows = k + 1, V = runner.vocab_size();
  std::vector<int32_t> tokens(static_cast<size_t>(batch * rows)), positions(tokens.size()), logit_rows(tokens.size());
  std::vector<ops::SeqSlice> slices;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < rows; ++j) {
      const int64_t r = b * rows + j;
      tokens[r] = static_cast<int32_t>((17 * r + 3) % V);
      positions[r] = static_cast<int32_t>(j);
    }
    slices.push_back(ops::SeqSlice{.token_begin = b * rows, .n_tokens = static_cast<int32_t>(rows), .start_pos = 0,
                                   .block_table = tables[b].blocks().data()});
  }
  std::iota(logit_rows.begin(), logit_rows.end(), 0);
  const auto t0 = Clock::now();
  runner.begin_step();
  const TargetStep target = runner.run_target(
      {.tokens = tokens, .positions = positions, .seqs = slices, .logit_rows = logit_rows,
       .decode_rows = static_cast<int64_t>(tokens.size()), .capture_hidden = true});  // verify rows only
  // The host's pass over each logit row (the verifier's argmax / sampling reads every row once).
  volatile float sink = 0;
  for (size_t r = 0; r < logit_rows.size(); ++r)
    sink = sink + *std::max_element(target.logits.begin() + r * V, target.logits.begin() + (r + 1) * V);
  const auto t1 = Clock::now();
  if (k == 0) {
    std::vector<HiddenStash::Copy> copies;
    for (int64_t b = 0; b < batch; ++b) copies.push_back({.src_row = b, .dst_row = b, .n = 1});
    runner.stash_hidden(target.fwd.hidden, copies);
  } else {
    // About half the drafts accepted: the extend pairs 1 + k / 2 committed rows per sequence (online refinement
    // follows the real mix).
    const int64_t pairs = 1 + k / 2;
    std::vector<spec::ExtendSeq> seqs;
    for (int64_t b = 0; b < batch; ++b)
      seqs.push_back(spec::ExtendSeq{.next_tokens = std::span<const int32_t>(tokens.data() + b * rows + 1,
                                                                             static_cast<size_t>(pairs)),
                                     .first_pos = 0,
                                     .hidden_row = b * rows,
                                     .block_table = tables[b].blocks().data(),
                                     .k = k});
    (void)runner.run_draft(target.fwd.hidden, seqs);  // reads the drafts back: the step's end
  }
  const auto t2 = Clock::now();
  return {std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count()};
}

}  // namespace

spec::CostTable calibrate_step_costs(ModelRunner& runner, kv::BlockAllocator& allocator,
                                     const CalibrationOptions& o) {
  spec::CostTable table(o.max_batch, o.k_max);
  const auto& buckets = table.buckets();
  int last_measured = -1;
  for (int bi = 0; bi < static_cast<int>(buckets.size()); ++bi) {
    const int batch = buckets[bi];
    std::vector<kv::BlockTable> tables;
    bool fits = batch <= o.measured_batch;
    for (int b = 0; fits && b < batch; ++b) {
      tables.emplace_back(o.block_size);
      fits = tables.back().ensure(allocator, o.k_max + 2);
    }
    if (fits) {
      for (int k = 0; k <= o.k_max; ++k) {
        (void)time_step(runner, tables, k);  // warm-up: first touches of this shape (arena growth, caches)
        StepTime best{1e30, 1e30};
        for (int r = 0; r < std::max(o.repeats, 1); ++r) {
          const StepTime t = time_step(runner, tables, k);
          best = {std::min(best.verify, t.verify), std::min(best.draft, t.draft)};
        }
        table.set(bi, k, best.verify, best.draft);
      }
      last_measured = bi;
    } else {
      TANDEM_CHECK(last_measured >= 0, "the KV cache cannot hold one synthetic sequence for cost calibration");
      const double scale = static_cast<double>(batch) / buckets[last_measured];
      for (int k = 0; k <= o.k_max; ++k)
        table.set(bi, k, table.part(spec::CostTable::kVerify, last_measured, k) * scale,
                  table.part(spec::CostTable::kDraft, last_measured, k) * scale);
    }
    for (auto& t : tables) t.release(allocator);
  }
  return table;
}

}  // namespace tandem::engine
