#include <gtest/gtest.h>

#include "core/error.h"
#include "kv/block_table.h"

using namespace tandem::kv;

TEST(BlockAllocator, AllocatesAndFreesEveryBlockOnce) {
  BlockAllocator a(4);
  EXPECT_TRUE(a.can_allocate(4));
  auto b = a.allocate(3);
  EXPECT_EQ(a.num_free(), 1);
  EXPECT_FALSE(a.can_allocate(2));
  EXPECT_THROW(a.allocate(2), tandem::Error);
  a.free(b);
  EXPECT_EQ(a.num_free(), 4);
  EXPECT_THROW(a.free(b), tandem::Error);  // double free is a broken invariant
}

TEST(BlockTable, GrowsShrinksAndNeverPartiallyAllocates) {
  BlockAllocator a(5);
  BlockTable t(4);
  EXPECT_EQ(t.blocks_needed(9), 3);
  EXPECT_TRUE(t.ensure(a, 9));
  EXPECT_EQ(t.blocks().size(), 3u);
  EXPECT_TRUE(t.ensure(a, 12));  // still 3 blocks
  EXPECT_EQ(a.num_free(), 2);
  BlockTable u(4);
  EXPECT_FALSE(u.ensure(a, 13));  // needs 4, 2 free: nothing taken
  EXPECT_EQ(a.num_free(), 2);
  t.truncate(a, 5);  // rollback: 2 blocks cover 5 positions
  EXPECT_EQ(t.blocks().size(), 2u);
  EXPECT_EQ(a.num_free(), 3);
  t.release(a);
  EXPECT_EQ(a.num_free(), 5);
}
