// Backend::begin_step: the one place a step's host metadata becomes device data.
#include <algorithm>
#include <vector>

#include "ops/ops.h"

namespace tandem::ops {

StepState Backend::begin_step(const BatchDesc& b, Arena& arena) {
  const int64_t T = static_cast<int64_t>(b.positions.size()), S = static_cast<int64_t>(b.seqs.size());
  const int64_t R = static_cast<int64_t>(b.logit_rows.size());
  TANDEM_CHECK(b.tokens.empty() || static_cast<int64_t>(b.tokens.size()) == T, "begin_step: {} tokens, {} positions",
               b.tokens.size(), T);
  TANDEM_CHECK(b.block_size > 0, "begin_step: block size {}", b.block_size);
  int64_t max_blocks = 1, covered = 0;
  for (const SeqSlice& s : b.seqs) {
    TANDEM_CHECK(s.n_tokens >= 0 && s.start_pos >= 0 && s.token_begin == covered && s.block_table != nullptr,
                 "begin_step: sequence slices must cover the rows in order (row {}, slice at {})", covered,
                 s.token_begin);
    covered += s.n_tokens;
    max_blocks = std::max<int64_t>(max_blocks, (int64_t{s.start_pos} + s.n_tokens + b.block_size - 1) / b.block_size);
  }
  TANDEM_CHECK(covered == T, "begin_step: slices cover {} of {} rows", covered, T);
  for (int32_t r : b.logit_rows) TANDEM_CHECK(r >= 0 && r < T, "begin_step: logit row {} outside [0, {})", r, T);
  TANDEM_CHECK(b.decode_rows >= 0 && b.decode_rows <= T, "begin_step: {} decode rows of {}", b.decode_rows, T);
  int64_t decode_logit_rows = 0;  // the logit rows of decode rows lead, so the lm_head can split them off
  while (decode_logit_rows < R && b.logit_rows[decode_logit_rows] < b.decode_rows) ++decode_logit_rows;
  for (int64_t i = decode_logit_rows; i < R; ++i)
    TANDEM_CHECK(b.logit_rows[i] >= b.decode_rows, "begin_step: logit row {} of a decode row follows a prefill row's",
                 b.logit_rows[i]);

  std::vector<int32_t> info(static_cast<size_t>(S * kSeqInfoCols));            // [S, 3]
  std::vector<int32_t> tables(static_cast<size_t>(S * max_blocks), -1);         // [S, max_blocks]
  for (int64_t i = 0; i < S; ++i) {
    const SeqSlice& s = b.seqs[i];
    info[i * kSeqInfoCols + kSeqTokenBegin] = static_cast<int32_t>(s.token_begin);
    info[i * kSeqInfoCols + kSeqNumTokens] = s.n_tokens;
    info[i * kSeqInfoCols + kSeqStartPos] = s.start_pos;
    const int64_t n = (int64_t{s.start_pos} + s.n_tokens + b.block_size - 1) / b.block_size;
    std::copy(s.block_table, s.block_table + n, tables.begin() + i * max_blocks);
  }
  StepState st{.n_tokens = T, .n_seqs = S, .n_logit_rows = R, .max_blocks = max_blocks,
               .decode_rows = b.decode_rows, .decode_logit_rows = decode_logit_rows};
  st.tokens = arena.alloc(DType::kI32, {T});
  st.positions = arena.alloc(DType::kI32, {T});
  st.logit_rows = arena.alloc(DType::kI32, {R});
  st.seq_info = arena.alloc(DType::kI32, {S, kSeqInfoCols});
  st.block_tables = arena.alloc(DType::kI32, {S, max_blocks});
  if (!b.tokens.empty()) upload(b.tokens.data(), st.tokens);
  if (T > 0) upload(b.positions.data(), st.positions);
  if (R > 0) upload(b.logit_rows.data(), st.logit_rows);
  if (S > 0) {
    upload(info.data(), st.seq_info);
    upload(tables.data(), st.block_tables);
  }
  return st;
}

}  // namespace tandem::ops
