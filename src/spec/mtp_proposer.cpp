#include "spec/mtp_proposer.h"

#include <array>


namespace tandem::spec {

std::vector<std::vector<int32_t>> MtpProposer::propose(ops::Backend& be, Arena& arena, const kv::KvCache& cache,
                                                       const Tensor& target_hidden, const Tensor& stash,
                                                       std::span<const ExtendSeq> seqs,
                                                       const ProposerHooks& hooks) const {
  const int block_size = cache.shape().block_size;
  std::vector<std::vector<int32_t>> drafts(seqs.size());
  // Extend pass over every request's newly committed pairs: those whose hidden rows are in the target's output
  // first, then those kept in the stash, so each source is read by one gather.
  std::vector<int32_t> tokens, positions, logit_rows;
  std::array<std::vector<int32_t>, 2> gather;  // [source] hidden row of each pair: target, stash
  std::vector<ops::SeqSlice> slices;
  std::vector<size_t> proposers;  // indexes into seqs, in logit-row order
  for (int source = 0; source < 2; ++source)
    for (size_t i = 0; i < seqs.size(); ++i) {
      const ExtendSeq& e = seqs[i];
      const int64_t n = static_cast<int64_t>(e.next_tokens.size());
      if (n == 0 || e.from_stash != (source == 1)) continue;
      const int64_t begin = static_cast<int64_t>(tokens.size());
      for (int64_t j = 0; j < n; ++j) {
        tokens.push_back(e.next_tokens[j]);
        positions.push_back(static_cast<int32_t>(e.first_pos + j));
        gather[source].push_back(static_cast<int32_t>(e.hidden_row + j));
      }
      slices.push_back(ops::SeqSlice{.token_begin = begin,
                                     .n_tokens = static_cast<int32_t>(n),
                                     .start_pos = static_cast<int32_t>(e.first_pos),
                                     .block_table = e.block_table});
      if (e.k > 0) {
        logit_rows.push_back(static_cast<int32_t>(tokens.size() - 1));
        proposers.push_back(i);
      }
    }
  if (tokens.empty()) return drafts;
  if (hooks.before_forward) hooks.before_forward();
  const int64_t T = static_cast<int64_t>(tokens.size()), H = hidden_size_;
  const ops::StepState extend = be.begin_step(ops::BatchDesc{.tokens = tokens, .positions = positions, .seqs = slices,
                                                             .logit_rows = logit_rows, .block_size = block_size},
                                              arena);
  const Tensor hidden = arena.alloc(DType::kF32, {T, H});  // [T, H] target post-norm hidden of the pairs
  int64_t row = 0;
  for (int source = 0; source < 2; ++source) {
    const int64_t n = static_cast<int64_t>(gather[source].size());
    if (n == 0) continue;
    const Tensor ids = arena.alloc(DType::kI32, {n});  // [n] row of each pair in its source
    be.upload(gather[source].data(), ids);
    be.gather_rows(source == 0 ? target_hidden : stash, ids, hidden.rows(row, n));
    row += n;
  }
  const models::ForwardOutput out = draft_.forward(be, arena, cache, extend, hidden);
  if (proposers.empty()) return drafts;

  // Chain step j feeds (h'_{j-1}, x_{j-1}) at position last + j for the requests that want more than j drafts.
  // Each step's ids stay on the device; all are read back after the last step.
  int64_t P = static_cast<int64_t>(proposers.size());
  Tensor h_prev = arena.alloc(DType::kF32, {P, H});  // [P, H] h' of each proposer's last row
  be.gather_rows(out.hidden, extend.logit_rows, h_prev);
  Tensor ids = arena.alloc(DType::kI32, {P});  // [P] step 0's drafts
  be.argmax_rows(out.logits, ids);
  std::vector<std::pair<Tensor, std::vector<size_t>>> steps{{ids, proposers}};  // device ids + their owners
  for (int j = 1;; ++j) {
    std::vector<int32_t> keep;  // rows of h_prev / ids that continue
    std::vector<size_t> active;
    for (int64_t p = 0; p < P; ++p)
      if (seqs[proposers[p]].k > j) {
        keep.push_back(static_cast<int32_t>(p));
        active.push_back(proposers[p]);
      }
    if (active.empty()) break;
    const int64_t A = static_cast<int64_t>(active.size());
    if (A != P) {  // some requests stop here: keep the rows of the others
      const Tensor keep_ids = arena.alloc(DType::kI32, {A});  // [A]
      be.upload(keep.data(), keep_ids);
      const Tensor h = arena.alloc(DType::kF32, {A, H});  // [A, H]
      be.gather_rows(h_prev, keep_ids, h);
      const Tensor kept = arena.alloc(DType::kI32, {A, 1});  // [A, 1]
      be.gather_rows(ids.reshape({P, 1}), keep_ids, kept);
      h_prev = h;
      ids = kept.reshape({A});
    }
    std::vector<int32_t> cpos(A), rows(A);
    std::vector<ops::SeqSlice> cs(A);
    for (int64_t a = 0; a < A; ++a) {
      const ExtendSeq& e = seqs[active[a]];
      cpos[a] = static_cast<int32_t>(e.first_pos + static_cast<int64_t>(e.next_tokens.size()) - 1 + j);
      rows[a] = static_cast<int32_t>(a);
      cs[a] = ops::SeqSlice{.token_begin = a, .n_tokens = 1, .start_pos = cpos[a], .block_table = e.block_table};
    }
    if (hooks.before_forward) hooks.before_forward();
    ops::StepState chain = be.begin_step(
        ops::BatchDesc{.positions = cpos, .seqs = cs, .logit_rows = rows, .block_size = block_size}, arena);
    chain.tokens = ids;  // the previous step's drafts, on the device
    const models::ForwardOutput step = draft_.forward(be, arena, cache, chain, h_prev);
    ids = arena.alloc(DType::kI32, {A});
    be.argmax_rows(step.logits, ids);
    steps.emplace_back(ids, active);
    h_prev = step.hidden;
    P = A;
    proposers = active;
  }
  for (const auto& [dev_ids, owners] : steps) {
    std::vector<int32_t> host(owners.size());
    be.to_host(dev_ids, host.data());
    for (size_t i = 0; i < owners.size(); ++i) drafts[owners[i]].push_back(host[i]);
  }
  return drafts;
}

}  // namespace tandem::spec
