// One MTP loader for every layout: GLM-4.5-like (own embed/head), GLM-4.6-like (shared), MTP tensors outside
// the index, Qwen3-Next layout, missing and unused tensors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fixtures.h"
#include "common/model_runner.h"
#include "common/temp_dir.h"
#include "models/qwen3_next/mtp.h"

using namespace tandem;
using ::testing::HasSubstr;

namespace {

models::LoadOptions with_draft() { return {.with_draft = true, .draft_quant = {}}; }

TEST(MtpLoader, Glm45LayoutUsesItsOwnEmbeddingAndHead) {
  auto be = ops::make_cpu_backend(1);
  auto m = models::load_model(test::fixture_model("glm-a"), with_draft(), *be);
  ASSERT_TRUE(m->draft);
  EXPECT_TRUE(m->draft->has_own_embed());
  EXPECT_TRUE(m->draft->has_own_head());
  EXPECT_EQ(m->mtp_prefix, "model.layers.3.");
  EXPECT_TRUE(m->unused_tensors.empty());
}

TEST(MtpLoader, Glm46LayoutSharesTheTargetsEmbeddingAndHeadAndFindsUnindexedTensors) {
  auto be = ops::make_cpu_backend(1);
  auto m = models::load_model(test::fixture_model("glm-b"), with_draft(), *be);
  ASSERT_TRUE(m->draft);
  EXPECT_FALSE(m->draft->has_own_embed());
  EXPECT_FALSE(m->draft->has_own_head());
  EXPECT_GT(m->checkpoint->tensors_outside_index(), 0u);  // the MTP layer sits in mtp.safetensors
  EXPECT_TRUE(m->unused_tensors.empty());
}

TEST(MtpLoader, TargetOnlyLoadDoesNotReportTheMtpLayerAsUnused) {
  auto be = ops::make_cpu_backend(1);
  auto m = models::load_model(test::fixture_model("glm-b"), {.with_draft = false, .draft_quant = {}}, *be);
  EXPECT_FALSE(m->draft);
  EXPECT_TRUE(m->unused_tensors.empty());
}

TEST(MtpLoader, AMissingMtpTensorIsAnErrorNamingIt) {
  for (const std::string missing : {"model.layers.4.eh_proj.weight", "model.layers.4.mlp.experts.3.up_proj.weight",
                                    "model.layers.4.shared_head.norm.weight"}) {
    test::TempDir tmp;
    test::copy_checkpoint(test::fixture_model("glm-b"), tmp.path(),
                             [&](const loader::TensorInfo& t, loader::SafetensorsWriter& w) {
                               if (t.name != missing) w.add(t.name, t.view());
                             });
    auto be = ops::make_cpu_backend(1);
    try {
      models::load_model(tmp.path(), with_draft(), *be);
      ADD_FAILURE() << "loading without " << missing << " succeeded";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(missing));
    }
  }
}

TEST(MtpLoader, AnExtraTensorUnderTheMtpPrefixIsReportedUnused) {
  test::TempDir tmp;
  const float extra[4] = {1, 2, 3, 4};
  test::copy_checkpoint(test::fixture_model("glm-a"), tmp.path(),
                           [&](const loader::TensorInfo& t, loader::SafetensorsWriter& w) {
                             w.add(t.name, t.view());
                             if (t.name == "model.norm.weight") w.add("model.layers.3.extra_norm.weight", DType::kF32, {4}, extra);
                           });
  auto be = ops::make_cpu_backend(1);
  auto m = models::load_model(tmp.path(), with_draft(), *be);
  EXPECT_THAT(m->unused_tensors, ::testing::ElementsAre("model.layers.3.extra_norm.weight"));
}

TEST(MtpLoader, Qwen3NextMtpBlockMatchesTransformers) {
  const auto dir = test::fixture_model("qwen3next-mtp");
  auto m = models::qwen3_next::load_mtp(dir, loader::LinearLoad::kAsStored);
  EXPECT_TRUE(m->unused.empty());
  EXPECT_EQ(m->draft->layout().prefix, "mtp.");
  test::Reference ref(dir);
  auto be = ops::make_cpu_backend(2);
  const auto hidden = ref.floats("hidden");
  const auto next = ref.ints("next_ids");
  const int64_t n = static_cast<int64_t>(next.size()), H = m->config.hidden_size, V = m->config.vocab_size;
  kv::BlockAllocator alloc(8);
  kv::BlockTable table(16);
  table.ensure(alloc, n + 4);
  const auto& a = m->draft->layer_options().attn;
  kv::KvCache cache(*be, {.n_layers = 1, .n_blocks = 8, .block_size = 16, .n_kv_heads = a.n_kv_heads, .head_dim = a.head_dim});
  Buffer h(DType::kF32, {n, H});
  std::copy(hidden.begin(), hidden.end(), h.ptr<float>());
  std::vector<int32_t> pos(n), rows(n);
  std::iota(pos.begin(), pos.end(), 0);
  std::iota(rows.begin(), rows.end(), 0);
  ops::SeqSlice s{.token_begin = 0, .n_tokens = static_cast<int32_t>(n), .start_pos = 0, .block_table = table.blocks().data()};
  Arena arena(be->allocator());
  auto out = m->draft->forward(*be, arena, cache, {.tokens = next, .hidden = h.view(), .positions = pos, .seqs = {&s, 1}, .logit_rows = rows});
  const auto want = ref.floats("mtp_prefill_logits");
  EXPECT_LE(test::max_abs_diff(out.logits.ptr<float>(), want.data(), n * V), 2e-3f);
  const auto chain_ids = ref.ints("mtp_chain_ids");
  const auto chain_logits = ref.floats("mtp_chain_logits");
  Buffer prev(DType::kF32, {1, H});
  std::copy_n(out.hidden.ptr<float>() + (n - 1) * H, H, prev.ptr<float>());
  for (int step = 1; step < 3; ++step) {
    const int32_t tok = chain_ids[step - 1];
    const int32_t p = static_cast<int32_t>(n - 1 + step);
    const int32_t row = 0;
    ops::SeqSlice cs{.token_begin = 0, .n_tokens = 1, .start_pos = p, .block_table = table.blocks().data()};
    auto o = m->draft->forward(*be, arena, cache, {.tokens = {&tok, 1}, .hidden = prev.view(), .positions = {&p, 1}, .seqs = {&cs, 1}, .logit_rows = {&row, 1}});
    EXPECT_LE(test::max_abs_diff(o.logits.ptr<float>(), chain_logits.data() + step * V, V), 2e-3f) << "chain step " << step;
    std::copy_n(o.hidden.ptr<float>(), H, prev.ptr<float>());
  }
}

}  // namespace
