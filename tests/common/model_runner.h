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
  Arena arena{be_allocator()};  // never reset: every output of this helper stays valid for the test

  Allocator& be_allocator() { return backend.allocator(); }

  /// kv_dtype: the caches' element type (f32 by default: exact, what golden comparisons need).
  SingleSequence(models::LoadedModel& m, ops::Backend& be, DType kv_dtype = DType::kF32)
      : model(m),
        backend(be),
        target_cache(be, kv::KvCacheShape{.n_layers = m.target->n_kv_layers(), .n_blocks = 64, .block_size = 16,
                                          .n_kv_heads = m.config.num_key_value_heads, .head_dim = m.config.head_dim,
                                          .dtype = kv_dtype}) {
    if (m.draft) {
      const auto& a = m.draft->layer_options().attn;
      draft_cache = std::make_unique<kv::KvCache>(
          be, kv::KvCacheShape{.n_layers = 1, .n_blocks = 64, .block_size = 16, .n_kv_heads = a.n_kv_heads,
                               .head_dim = a.head_dim, .dtype = kv_dtype});
    }
  }

  /// A forward's outputs copied to host memory (the backend's may be device memory).
  struct HostOutput {
    Buffer logits;  // [R, V] f32
    Buffer hidden;  // [T, H] f32 (empty when the forward captured none)
  };
  HostOutput download(const models::ForwardOutput& o) {
    HostOutput h;
    h.logits = Buffer(DType::kF32, o.logits.shape);
    if (o.logits.numel() > 0) backend.to_host(o.logits, h.logits.ptr<float>());
    if (!o.hidden.empty()) {
      h.hidden = Buffer(DType::kF32, o.hidden.shape);
      backend.to_host(o.hidden, h.hidden.ptr<float>());
    }
    return h;
  }

  /// Target forward of `tokens` at positions [start, start + n); logits for every row, hidden captured.
  HostOutput target(const std::vector<int32_t>& tokens, int start) {
    table.ensure(alloc, start + static_cast<int64_t>(tokens.size()));
    std::vector<int32_t> pos(tokens.size()), rows(tokens.size());
    std::iota(pos.begin(), pos.end(), start);
    std::iota(rows.begin(), rows.end(), 0);
    const ops::SeqSlice s{.token_begin = 0, .n_tokens = static_cast<int32_t>(tokens.size()), .start_pos = start,
                          .block_table = table.blocks().data()};
    return download(model.target->forward(backend, arena, target_cache,
                                          models::ForwardInput{.tokens = tokens, .positions = pos, .seqs = {&s, 1},
                                                               .logit_rows = rows, .capture_hidden = true}));
  }

  /// Draft forward of pairs (hidden row i, tokens[i]) at positions [start, start + n); logits for every row.
  /// hidden [n, H] f32 is host memory.
  HostOutput draft(const std::vector<int32_t>& tokens, const Tensor& host_hidden, int start) {
    const Tensor hidden = arena.alloc(DType::kF32, host_hidden.shape);  // [n, H] on the backend
    backend.upload(host_hidden.data, hidden);
    table.ensure(alloc, start + static_cast<int64_t>(tokens.size()));
    std::vector<int32_t> pos(tokens.size()), rows(tokens.size());
    std::iota(pos.begin(), pos.end(), start);
    std::iota(rows.begin(), rows.end(), 0);
    const ops::SeqSlice s{.token_begin = 0, .n_tokens = static_cast<int32_t>(tokens.size()), .start_pos = start,
                          .block_table = table.blocks().data()};
    return download(model.draft->forward(backend, arena, *draft_cache,
                                         models::mtp::DraftInput{.tokens = tokens, .hidden = hidden, .positions = pos,
                                                                 .seqs = {&s, 1}, .logit_rows = rows}));
  }
};

}  // namespace tandem::test
