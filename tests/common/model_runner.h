// Test helper: run a loaded model directly (no engine) over one sequence with a fresh paged cache.
#pragma once

#include <numeric>

#include "kv/block_table.h"
#include "models/loaded_model.h"

namespace tandem::test {

struct SingleSequence {
  models::LoadedModel& model;
  ops::Backend& backend;
  kv::BlockAllocator alloc{64};
  kv::KvCache target_cache;
  std::unique_ptr<kv::KvCache> draft_cache;
  kv::BlockTable table{16};

  SingleSequence(models::LoadedModel& m, ops::Backend& be)
      : model(m),
        backend(be),
        target_cache(be, kv::KvCacheShape{.n_layers = m.target->n_kv_layers(), .n_blocks = 64, .block_size = 16,
                                          .n_kv_heads = m.config.num_key_value_heads, .head_dim = m.config.head_dim}) {
    if (m.draft) {
      const auto& a = m.draft->layer_options().attn;
      draft_cache = std::make_unique<kv::KvCache>(
          be, kv::KvCacheShape{.n_layers = 1, .n_blocks = 64, .block_size = 16, .n_kv_heads = a.n_kv_heads,
                               .head_dim = a.head_dim});
    }
  }

  /// Target forward of `tokens` at positions [start, start + n); logits for every row, hidden captured.
  models::ForwardOutput target(const std::vector<int32_t>& tokens, int start) {
    table.ensure(alloc, start + static_cast<int64_t>(tokens.size()));
    std::vector<int32_t> pos(tokens.size()), rows(tokens.size());
    std::iota(pos.begin(), pos.end(), start);
    std::iota(rows.begin(), rows.end(), 0);
    const ops::SeqSlice s{.token_begin = 0, .n_tokens = static_cast<int32_t>(tokens.size()), .start_pos = start,
                          .block_table = table.blocks().data()};
    return model.target->forward(backend, target_cache,
                                 models::ForwardInput{.tokens = tokens, .positions = pos, .seqs = {&s, 1},
                                                      .logit_rows = rows, .capture_hidden = true});
  }

  /// Draft forward of pairs (hidden row i, tokens[i]) at positions [start, start + n); logits for every row.
  models::ForwardOutput draft(const std::vector<int32_t>& tokens, const Tensor& hidden, int start) {
    table.ensure(alloc, start + static_cast<int64_t>(tokens.size()));
    std::vector<int32_t> pos(tokens.size()), rows(tokens.size());
    std::iota(pos.begin(), pos.end(), start);
    std::iota(rows.begin(), rows.end(), 0);
    const ops::SeqSlice s{.token_begin = 0, .n_tokens = static_cast<int32_t>(tokens.size()), .start_pos = start,
                          .block_table = table.blocks().data()};
    return model.draft->forward(backend, *draft_cache,
                                models::mtp::DraftInput{.tokens = tokens, .hidden = hidden, .positions = pos,
                                                        .seqs = {&s, 1}, .logit_rows = rows});
  }
};

}  // namespace tandem::test
