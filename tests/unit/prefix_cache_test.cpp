// Prefix caching without a model: block reference counts and the LRU of cached blocks (kv/block_allocator.h),
// chained block keys, matching and draft validity (kv/prefix_cache.h).
#include <gtest/gtest.h>

#include <numeric>

#include "core/error.h"
#include "kv/block_table.h"
#include "kv/prefix_cache.h"

using namespace tandem::kv;

namespace {

constexpr int B = 4;

std::vector<int32_t> seq(int n, int32_t first = 100) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

/// A sequence that ran `tokens` (target KV over [0, n_target), draft KV over [0, n_draft)) and published.
struct Owner {
  BlockTable table{B};
  PrefixCursor cursor;
  std::vector<int32_t> tokens;
  Owner(BlockAllocator& a, PrefixCache& c, std::vector<int32_t> toks, int64_t n_prompt, int64_t n_target,
        int64_t n_draft = 0)
      : tokens(std::move(toks)) {
    EXPECT_TRUE(table.ensure(a, static_cast<int64_t>(tokens.size())));
    c.publish(cursor, table.blocks(), tokens, n_prompt, n_target, n_draft);
  }
};

}  // namespace

TEST(BlockAllocator, CachedBlocksWaitOnAnLruListAndAreEvictedOldestFirst) {
  BlockAllocator a(4);
  std::vector<int32_t> evicted;
  a.set_on_evict([&](int32_t b) { evicted.push_back(b); });
  auto b = a.allocate(3);  // 0, 1, 2
  a.set_cached(b[0], true);
  a.set_cached(b[1], true);
  a.free(std::vector<int32_t>{b[1], b[0], b[2]});  // 1 then 0 enter the LRU list; 2 is plainly free
  EXPECT_EQ(a.num_free(), 4);
  EXPECT_EQ(a.num_cached(), 2);
  EXPECT_EQ(a.num_used(), 0);
  a.share(b[0]);  // a hit takes 0 off the list
  EXPECT_EQ(a.ref_count(b[0]), 1);
  EXPECT_EQ(a.num_cached(), 1);
  auto c = a.allocate(3);  // the two free ones, then the oldest cached: 1
  EXPECT_EQ(evicted, std::vector<int32_t>{b[1]});
  EXPECT_FALSE(a.cached(b[1]));
  EXPECT_FALSE(a.can_allocate(1));
  a.free(c);
  a.free(std::vector<int32_t>{b[0]});
  EXPECT_EQ(a.num_free(), 4);
  EXPECT_THROW(a.free(std::vector<int32_t>{b[0]}), tandem::Error);  // a cached block is not in use
  a.set_cached(b[0], false);  // uncaching an unused cached block frees it
  EXPECT_EQ(a.num_cached(), 0);
  EXPECT_EQ(a.num_free(), 4);
  EXPECT_THROW(a.share(b[0]), tandem::Error);  // neither in use nor cached
}

TEST(BlockAllocator, SharedBlocksAreFreedByTheirLastHolder) {
  BlockAllocator a(2);
  auto b = a.allocate(1);
  a.share(b[0]);
  a.free(b);
  EXPECT_EQ(a.num_free(), 1);
  a.free(b);
  EXPECT_EQ(a.num_free(), 2);
}

TEST(PrefixCache, KeysChainTheParentTheTokensAndThePathTag) {
  const auto t = seq(B);
  const uint64_t k = PrefixCache::chain_key(1, t, 0);
  EXPECT_EQ(k, PrefixCache::chain_key(1, t, 0));
  EXPECT_NE(k, PrefixCache::chain_key(2, t, 0));
  EXPECT_NE(k, PrefixCache::chain_key(1, t, 3));
  auto u = t;
  u.back() += 1;
  EXPECT_NE(k, PrefixCache::chain_key(1, u, 0));
}

TEST(PrefixCache, HitsAreWholeMatchingBlocksAndNeverTheLastToken) {
  BlockAllocator a(16);
  PrefixCache c(a, B, 7, /*path_in_key=*/false);
  const auto toks = seq(4 * B + 2);  // 4 full blocks and a partial one
  Owner o(a, c, toks, static_cast<int64_t>(toks.size()), static_cast<int64_t>(toks.size()));
  EXPECT_EQ(c.num_blocks(), 4);
  // The same tokens: every full block but the one holding the last token... which here is partial: 4 blocks.
  EXPECT_EQ(c.match(toks, 0).blocks.size(), 4u);
  EXPECT_EQ(c.match(toks, 0).blocks, std::vector<int32_t>(o.table.blocks().begin(), o.table.blocks().begin() + 4));
  // Exactly 4 blocks of tokens: the last token is recomputed, so the 4th block is not a hit.
  EXPECT_EQ(c.match(seq(4 * B), 0).blocks.size(), 3u);
  // Differs in the last token of block 2: blocks 0 and 1 only.
  auto d = toks;
  d[3 * B - 1] = 7;
  EXPECT_EQ(c.match(d, 0).blocks.size(), 2u);
  // Differs only after block 2's end: 3 blocks (the first token of block 3 differs).
  auto e = toks;
  e[3 * B] = 7;
  EXPECT_EQ(c.match(e, 0).blocks.size(), 3u);
  // Differs in the first token: nothing.
  auto f = toks;
  f[0] = 7;
  EXPECT_TRUE(c.match(f, 0).blocks.empty());
  EXPECT_TRUE(c.match(std::vector<int32_t>{}, 0).blocks.empty());
}

TEST(PrefixCache, OnlyBlocksTheTargetComputedEnterTheCache) {
  BlockAllocator a(16);
  PrefixCache c(a, B, 7, false);
  const auto toks = seq(5 * B);
  PrefixCursor cur;
  BlockTable t(B);
  ASSERT_TRUE(t.ensure(a, 5 * B));
  c.publish(cur, t.blocks(), toks, 5 * B, 2 * B + 3, 0);  // a prefill chunk ended inside block 2
  EXPECT_EQ(c.num_blocks(), 2);
  c.publish(cur, t.blocks(), toks, 5 * B, 4 * B, 0);
  EXPECT_EQ(c.num_blocks(), 4);
  EXPECT_EQ(c.match(toks, 5 * B).blocks.size(), 4u);
}

TEST(PrefixCache, PathTagsKeepPromptRowsApartFromGeneratedRows) {
  BlockAllocator a(16);
  PrefixCache c(a, B, 7, /*path_in_key=*/true);
  const auto toks = seq(4 * B + 1);
  // The owner's prompt ended inside block 1: positions from B + 2 on were generated (decode rows).
  Owner o(a, c, toks, B + 2, static_cast<int64_t>(toks.size()));
  EXPECT_EQ(c.match(toks, B + 2).blocks.size(), 4u);  // the owner itself, after a preemption
  // A new request whose prompt is all of it would prefill those positions: only block 0 has its bits.
  EXPECT_EQ(c.match(toks, static_cast<int64_t>(toks.size())).blocks.size(), 1u);
  BlockAllocator a2(16);
  PrefixCache same(a2, B, 7, /*path_in_key=*/false);  // a backend whose two paths agree reuses it all
  Owner o2(a2, same, toks, B + 2, static_cast<int64_t>(toks.size()));
  EXPECT_EQ(same.match(toks, static_cast<int64_t>(toks.size())).blocks.size(), 4u);
}

TEST(PrefixCache, DraftValidityCoversWrittenBlocksAndChecksTheTokenAfterTheHit) {
  BlockAllocator a(16);
  PrefixCache c(a, B, 7, false);
  const auto toks = seq(4 * B + 2);
  // Target KV over everything, draft KV over [0, 2B + 1): blocks 0 and 1 are draft-valid.
  Owner o(a, c, toks, static_cast<int64_t>(toks.size()), static_cast<int64_t>(toks.size()), 2 * B + 1);
  PrefixMatch m = c.match(toks, 0);
  EXPECT_EQ(m.blocks.size(), 4u);
  EXPECT_EQ(m.draft_blocks, 2);
  // All draft-valid: a hit ending on block 3 needs the token after it to be the one the draft paired.
  c.publish(o.cursor, o.table.blocks(), toks, static_cast<int64_t>(toks.size()), static_cast<int64_t>(toks.size()),
            static_cast<int64_t>(toks.size()) - 1);
  EXPECT_EQ(c.match(toks, 0).draft_blocks, 4);
  auto other_next = toks;
  other_next[4 * B] = 7;  // same 4 blocks, another token after them
  m = c.match(other_next, 0);
  EXPECT_EQ(m.blocks.size(), 4u);
  EXPECT_EQ(m.draft_blocks, 3);
}

TEST(PrefixCache, ADraftValidCopyReplacesACachedCopyWithoutDraftKv) {
  BlockAllocator a(16);
  PrefixCache c(a, B, 7, false);
  const auto toks = seq(3 * B + 1);
  const int64_t n = static_cast<int64_t>(toks.size());
  Owner plain(a, c, toks, n, n, 0);  // a request without a draft state cached the blocks first
  EXPECT_EQ(c.match(toks, 0).draft_blocks, 0);
  Owner spec(a, c, toks, n, n, n - 1);  // computed the same blocks again, with the draft
  const PrefixMatch m = c.match(toks, 0);
  EXPECT_EQ(m.draft_blocks, 3);
  EXPECT_EQ(m.blocks, std::vector<int32_t>(spec.table.blocks().begin(), spec.table.blocks().begin() + 3));
  EXPECT_FALSE(a.cached(plain.table.blocks()[0]));  // the replaced copy is freed, not cached, when released
  plain.table.release(a);
  spec.table.release(a);
  EXPECT_EQ(a.num_free(), 16);
  EXPECT_EQ(a.num_cached(), 3);
}

TEST(PrefixCache, EvictionUnderPressureKeepsTheMostRecentPrefixes) {
  BlockAllocator a(8);
  PrefixCache c(a, B, 7, false);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) {  // 6 prompts of 3 full blocks each into 8 blocks
    prompts.push_back(seq(3 * B + 1, 1000 * (i + 1)));
    Owner o(a, c, prompts.back(), 3 * B + 1, 3 * B + 1);
    o.table.release(a);
    EXPECT_EQ(a.num_used(), 0);
    EXPECT_EQ(a.num_free(), 8);
  }
  EXPECT_EQ(c.match(prompts[5], 0).blocks.size(), 3u);  // the newest is whole
  EXPECT_TRUE(c.match(prompts[0], 0).blocks.empty());   // the oldest was evicted
  EXPECT_LE(c.num_blocks(), 8);
  // A hit holds its blocks: allocating everything else cannot evict them.
  BlockTable t(B);
  t.adopt(a, c.match(prompts[5], 0).blocks);
  EXPECT_EQ(a.num_free(), 5);
  auto rest = a.allocate(5);
  EXPECT_EQ(c.match(prompts[5], 0).blocks.size(), 3u);
  a.free(rest);
  t.release(a);
  EXPECT_EQ(a.num_free(), 8);
}

TEST(PrefixCache, FlushForgetsEveryKeyAndFreesUnusedBlocks) {
  BlockAllocator a(8);
  PrefixCache c(a, B, 7, false);
  Owner kept(a, c, seq(2 * B + 1), 2 * B + 1, 2 * B + 1);
  Owner done(a, c, seq(2 * B + 1, 500), 2 * B + 1, 2 * B + 1);
  done.table.release(a);
  EXPECT_EQ(a.num_cached(), 2);
  c.flush();
  EXPECT_EQ(c.num_blocks(), 0);
  EXPECT_EQ(a.num_cached(), 0);
  EXPECT_TRUE(c.match(seq(2 * B + 1), 0).blocks.empty());
  kept.table.release(a);  // in use during the flush: freed, not cached
  EXPECT_EQ(a.num_free(), 8);
  EXPECT_EQ(a.num_cached(), 0);
}
