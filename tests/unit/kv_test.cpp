#include <gtest/gtest.h>

#include "core/error.h"
#include "kv/block_table.h"
#include "kv/kv_cache.h"
#include "kv/kv_dtype.h"

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

TEST(KvCacheDtype, ParsesVllmNamesAndAliases) {
  using tandem::DType;
  EXPECT_EQ(parse_kv_cache_dtype("auto"), DType::kBF16);
  EXPECT_EQ(parse_kv_cache_dtype("bf16"), DType::kBF16);
  EXPECT_EQ(parse_kv_cache_dtype("bfloat16"), DType::kBF16);
  EXPECT_EQ(parse_kv_cache_dtype("fp8_e4m3"), DType::kF8E4M3);
  EXPECT_EQ(parse_kv_cache_dtype("fp8"), DType::kF8E4M3);
  EXPECT_EQ(parse_kv_cache_dtype("float32"), DType::kF32);
  EXPECT_THROW((void)parse_kv_cache_dtype("fp8_e5m2"), tandem::Error);
  EXPECT_THROW((void)parse_kv_cache_dtype("float16"), tandem::Error);
  EXPECT_EQ(kv_cache_dtype_name(DType::kF8E4M3), "fp8_e4m3");
}

TEST(KvCache, StoresEachDtypeAtItsSizeWithPerHeadScales) {
  using tandem::DType;
  auto be = tandem::ops::make_cpu_backend(1);
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF8E4M3}) {
    const KvCacheShape shape{
        .n_layers = 3, .n_blocks = 5, .block_size = 4, .n_kv_heads = 2, .head_dim = 8, .dtype = dt};
    EXPECT_EQ(shape.bytes_per_token_layer(), 2u * 2 * 8 * tandem::dtype_size(dt));
    KvCache cache(*be, shape);
    const size_t scales = dt == DType::kF8E4M3 ? 2 * 3 * 2 * sizeof(float) : 0;
    EXPECT_EQ(cache.nbytes(), 3u * 5 * 4 * shape.bytes_per_token_layer() + scales);
    const auto view = cache.layer(2);
    EXPECT_EQ(view.dtype, dt);
    EXPECT_NE(view.k, view.v);
    if (dt == DType::kF8E4M3) {
      ASSERT_TRUE(view.k_scale && view.v_scale);
      EXPECT_EQ(view.k_scale[0], 1.0f);  // no checkpoint scales: 1.0, like vLLM
    } else {
      EXPECT_EQ(view.k_scale, nullptr);
    }
  }
  KvCacheShape fp8{
      .n_layers = 2, .n_blocks = 1, .block_size = 4, .n_kv_heads = 2, .head_dim = 8, .dtype = DType::kF8E4M3};
  fp8.fp8_scales = {.k = {1, 2, 3, 4}, .v = {5, 6, 7, 8}};
  KvCache scaled(*be, fp8);
  EXPECT_EQ(scaled.layer(1).k_scale[0], 3.0f);
  EXPECT_EQ(scaled.layer(1).v_scale[1], 8.0f);
  EXPECT_EQ(scaled.scales().v[3], 8.0f);
  KvCacheShape bad = fp8;
  bad.fp8_scales.k = {1, 2, 3};  // not one per (layer, kv head)
  EXPECT_THROW(KvCache c(*be, bad), tandem::Error);
  bad.fp8_scales.k = {1, 2, 0, 4};  // not > 0
  EXPECT_THROW(KvCache c(*be, bad), tandem::Error);
  KvCacheShape bf16 = fp8;
  bf16.dtype = DType::kBF16;  // scales are for fp8 only
  EXPECT_THROW(KvCache c(*be, bf16), tandem::Error);
  KvCacheShape f16 = fp8;
  f16.dtype = DType::kF16;
  f16.fp8_scales = {};
  EXPECT_THROW(KvCache c(*be, f16), tandem::Error);
}
