// WeightMap over small checkpoints written to a temp dir: plain tensors, the problems it collects, unused
// tensors, and fp8 linears (per-tensor / per-channel / block scales, DeepSeek scale_inv, dequantisation).
#include <cmath>
#include <cstring>
#include <random>

#include "loader/safetensors_writer.h"
#include "loader/weight_map.h"
#include "loader_test_util.h"

namespace tandem::loader {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_json;

constexpr std::initializer_list<DType> kFloat = {DType::kBF16, DType::kF16, DType::kF32};

// Independent float8_e4m3fn decoder (sign, 4-bit exponent bias 7, 3-bit mantissa; 0x7f/0xff NaN).
float ref_f8(uint8_t v) {
  const int e = (v >> 3) & 15, m = v & 7;
  if (e == 15 && m == 7) return NAN;
  const float mag = e == 0 ? std::ldexp(m / 8.0f, -6) : std::ldexp(1.0f + m / 8.0f, e - 7);
  return (v & 0x80) ? -mag : mag;
}

// Helpers that build a checkpoint folder tensor by tensor.
struct Builder {
  SafetensorsWriter w;
  void f32(const std::string& name, Shape s, std::vector<float> v = {}) {
    if (v.empty())
      for (int64_t i = 0; i < s.numel(); ++i) v.push_back(0.25f * static_cast<float>(i + 1));
    w.add(name, DType::kF32, s, v.data());
  }
  void bf16(const std::string& name, Shape s, std::vector<float> v = {}) {
    if (v.empty())
      for (int64_t i = 0; i < s.numel(); ++i) v.push_back(0.5f * static_cast<float>(i + 1));
    std::vector<uint16_t> b;
    for (float x : v) b.push_back(f32_to_bf16(x));
    w.add(name, DType::kBF16, s, b.data());
  }
  void f8(const std::string& name, Shape s, std::vector<uint8_t> v = {}) {
    if (v.empty())
      for (int64_t i = 0; i < s.numel(); ++i) v.push_back(static_cast<uint8_t>(0x30 + i % 16));
    w.add(name, DType::kF8E4M3, s, v.data());
  }
  void i32(const std::string& name, Shape s, std::vector<int32_t> v) {
    w.add(name, DType::kI32, s, v.data());
  }
};

struct Loaded {
  std::unique_ptr<Checkpoint> ckpt;
  QuantConfig quant;
};

Loaded load(const TempDir& dir, const Builder& b, json quantization_config = nullptr) {
  json config = {{"hidden_size", 4}};
  if (!quantization_config.is_null()) config["quantization_config"] = quantization_config;
  write_json(dir / "config.json", config);
  b.w.write(dir / "model.safetensors");
  Loaded l;
  l.ckpt = Checkpoint::open(dir.path());
  l.quant = QuantConfig::from_hf(l.ckpt->config());
  return l;
}

json ct_config(const std::string& strategy, std::vector<int> block = {}) {
  json weights = {
      {"num_bits", 8}, {"type", "float"}, {"strategy", strategy}, {"symmetric", true}, {"dynamic", false}};
  if (!block.empty()) weights["block_structure"] = block;
  return {{"quant_method", "compressed-tensors"},
          {"format", "float-quantized"},
          {"config_groups",
           {{"group_0",
             {{"targets", {"Linear"}},
              {"weights", weights},
              {"input_activations",
               {{"num_bits", 8}, {"type", "float"}, {"strategy", "token"}, {"dynamic", true}}}}}}},
          {"ignore", {"lm_head", "re:.*mlp\\.gate$"}}};
}

json ds_config(int bo, int bi) {
  return {{"quant_method", "fp8"},
          {"fmt", "e4m3"},
          {"activation_scheme", "dynamic"},
          {"weight_block_size", {bo, bi}}};
}

std::string finish_error(WeightMap& wm) {
  return error_of([&] { wm.finish(); });
}

TEST(WeightMapTest, PlainTensorsAndUnusedReport) {
  TempDir dir;
  Builder b;
  b.bf16("model.norm.weight", {4}, {1, 2, 3, 4});
  b.f32("model.embed_tokens.weight", {3, 4});
  b.f32("model.layers.2.extra", {1});
  b.f32("model.layers.9.mtp.weight", {1});
  b.f32("stray", {1});
  const auto l = load(dir, b);
  WeightMap wm(*l.ckpt, l.quant);
  const Tensor norm = wm.tensor("model.norm.weight", {4}, kFloat);
  ASSERT_FALSE(norm.empty());
  EXPECT_EQ(norm.dtype, DType::kBF16);
  EXPECT_EQ(bf16_to_f32(norm.ptr<uint16_t>()[3]), 4.0f);
  EXPECT_EQ(norm.data, l.ckpt->find("model.norm.weight")->data);  // zero copy
  const Tensor emb = wm.tensor("model.embed_tokens.weight", {3, 4}, {DType::kF32});
  EXPECT_EQ(emb.ptr<float>()[11], 3.0f);
  EXPECT_TRUE(wm.optional_tensor("model.absent", {4}, kFloat).empty());
  EXPECT_TRUE(wm.has("stray"));
  EXPECT_FALSE(wm.has("model.absent"));
  EXPECT_THAT(wm.finish(), ElementsAre("model.layers.2.extra", "model.layers.9.mtp.weight", "stray"));
  const std::vector<std::string> skip = {"model.layers.9.", "stray"};
  EXPECT_THAT(wm.finish(skip), ElementsAre("model.layers.2.extra"));
}

TEST(WeightMapTest, MissingWrongShapeWrongDtypeAllReportedAtOnce) {
  TempDir dir;
  Builder b;
  b.f32("a.weight", {2, 3});
  b.i32("ids", {2}, {1, 2});
  b.f32("opt", {5});
  const auto l = load(dir, b);
  WeightMap wm(*l.ckpt, l.quant);
  EXPECT_TRUE(wm.tensor("missing.weight", {7, 8}, kFloat).empty());
  EXPECT_TRUE(wm.tensor("a.weight", {3, 2}, kFloat).empty());
  EXPECT_TRUE(wm.tensor("ids", {2}, kFloat).empty());
  EXPECT_TRUE(wm.optional_tensor("opt", {4}, kFloat).empty());
  EXPECT_EQ(wm.errors().size(), 4u);
  const std::string msg = finish_error(wm);
  EXPECT_THAT(msg, HasSubstr("4 problems loading " + dir.path().string()));
  EXPECT_THAT(msg, HasSubstr("missing tensor 'missing.weight': expected shape [7, 8], dtype BF16|F16|F32"));
  EXPECT_THAT(msg, HasSubstr("tensor 'a.weight' in model.safetensors: expected shape [3, 2], got [2, 3]"));
  EXPECT_THAT(msg, HasSubstr("tensor 'ids' in model.safetensors: expected dtype BF16|F16|F32, got I32"));
  EXPECT_THAT(msg, HasSubstr("tensor 'opt' in model.safetensors: expected shape [4], got [5]"));
}

TEST(WeightMapTest, PlainLinearWithBias) {
  TempDir dir;
  Builder b;
  b.bf16("q.weight", {3, 2});
  b.bf16("q.bias", {3});
  b.f32("o.weight", {2, 3});
  b.f32("k.weight", {3, 2});
  const auto l = load(dir, b);
  WeightMap wm(*l.ckpt, l.quant);
  const auto q = wm.linear("q", 3, 2, Bias::kRequired);
  EXPECT_EQ(q.quant, ops::WeightQuant::kNone);
  EXPECT_EQ(q.weight.dtype, DType::kBF16);
  EXPECT_EQ(q.out_features(), 3);
  EXPECT_FALSE(q.bias.empty());
  EXPECT_TRUE(q.scale.empty());
  const auto o = wm.linear("o", 2, 3, Bias::kOptional, LinearLoad::kDequantize);  // no fp8: left as stored
  EXPECT_EQ(o.weight.dtype, DType::kF32);
  EXPECT_TRUE(o.bias.empty());
  EXPECT_THAT(wm.finish(), ElementsAre("k.weight"));
  wm.linear("k", 3, 2, Bias::kRequired);
  EXPECT_THAT(finish_error(wm), HasSubstr("missing tensor 'k.bias': expected shape [3]"));
  ASSERT_EQ(wm.linear_records().size(), 2u);
  EXPECT_EQ(wm.linear_records()[0].prefix, "q");
  EXPECT_EQ(wm.linear_records()[0].bytes, 3u * 2u * 2u + 3u * 2u);
}

TEST(WeightMapTest, LinearShapeAndDtypeErrors) {
  TempDir dir;
  Builder b;
  b.bf16("a.weight", {3, 2});
  b.i32("c.weight", {1, 1}, {0});
  const auto l = load(dir, b);
  WeightMap wm(*l.ckpt, l.quant);
  EXPECT_TRUE(wm.linear("a", 2, 3, Bias::kNone).weight.empty());
  EXPECT_TRUE(wm.linear("b", 4, 4, Bias::kNone).weight.empty());
  EXPECT_TRUE(wm.linear("c", 1, 1, Bias::kNone).weight.empty());
  const std::string msg = finish_error(wm);
  EXPECT_THAT(msg, HasSubstr("tensor 'a.weight' in model.safetensors: expected shape [2, 3], got [3, 2]"));
  EXPECT_THAT(msg, HasSubstr("missing tensor 'b.weight': expected shape [4, 4]"));
  EXPECT_THAT(
      msg,
      HasSubstr("tensor 'c.weight' in model.safetensors: expected dtype BF16|F16|F32 or F8_E4M3, got I32"));
}

TEST(WeightMapTest, Fp8ChannelScaleOut1Bf16) {
  TempDir dir;
  Builder b;
  b.f8("l.down_proj.weight", {3, 4});
  b.bf16("l.down_proj.weight_scale", {3, 1}, {0.5f, 2.0f, 0.125f});
  b.f32("l.down_proj.weight_zero_point", {3, 1}, {0, -0.0f, 0});
  b.bf16("l.up_proj.weight", {3, 4});  // mixed precision: a bf16 linear in a quantized checkpoint
  const auto l = load(dir, b, ct_config("channel"));
  WeightMap wm(*l.ckpt, l.quant);
  const auto d = wm.linear("l.down_proj", 3, 4, Bias::kNone);
  EXPECT_EQ(d.quant, ops::WeightQuant::kFp8Channel);
  EXPECT_EQ(d.weight.dtype, DType::kF8E4M3);
  EXPECT_EQ(d.weight.data, l.ckpt->find("l.down_proj.weight")->data);
  EXPECT_EQ(d.scale.dtype, DType::kF32);
  EXPECT_EQ(d.scale.shape, (Shape{3}));
  EXPECT_EQ(d.scale.ptr<float>()[0], 0.5f);
  EXPECT_EQ(d.scale.ptr<float>()[1], 2.0f);
  EXPECT_EQ(d.scale.ptr<float>()[2], 0.125f);
  const auto u = wm.linear("l.up_proj", 3, 4, Bias::kNone);
  EXPECT_EQ(u.quant, ops::WeightQuant::kNone);
  EXPECT_TRUE(wm.finish().empty());  // the zero point was consumed
  const auto& r = wm.linear_records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].stored, DType::kF8E4M3);
  EXPECT_EQ(r[0].quant, ops::WeightQuant::kFp8Channel);
  EXPECT_FALSE(r[0].dequantized);
  EXPECT_EQ(r[0].bytes, 12u + 3u * 4u);
  EXPECT_EQ(r[1].stored, DType::kBF16);
  EXPECT_EQ(r[1].quant, ops::WeightQuant::kNone);
  auto owned = wm.take_owned();
  EXPECT_EQ(owned.size(), 1u);
  EXPECT_EQ(owned[0].view().data, d.scale.data);  // the scale lives in the handed-over buffer
}

TEST(WeightMapTest, Fp8ChannelScaleOutF32AndTensorScales) {
  TempDir dir;
  Builder b;
  b.f8("c.weight", {2, 2});
  b.f32("c.weight_scale", {2}, {3.0f, 4.0f});
  const auto l = load(dir, b, ct_config("channel"));
  WeightMap wm(*l.ckpt, l.quant);
  const auto c = wm.linear("c", 2, 2, Bias::kNone);
  EXPECT_EQ(c.quant, ops::WeightQuant::kFp8Channel);
  EXPECT_EQ(c.scale.ptr<float>()[1], 4.0f);
  EXPECT_TRUE(wm.finish().empty());

  for (const Shape& s : {Shape{1}, Shape{}}) {
    TempDir d2;
    Builder t;
    t.f8("t.weight", {2, 3});
    t.bf16("t.weight_scale", s, {0.75f});
    const auto l2 = load(d2, t, ct_config("tensor"));
    WeightMap wm2(*l2.ckpt, l2.quant);
    const auto lw = wm2.linear("t", 2, 3, Bias::kNone);
    EXPECT_EQ(lw.quant, ops::WeightQuant::kFp8Tensor);
    EXPECT_EQ(lw.scale.shape, (Shape{1}));
    EXPECT_EQ(lw.scale.ptr<float>()[0], 0.75f);
    EXPECT_TRUE(wm2.finish().empty());
  }
}

TEST(WeightMapTest, Fp8BlockScalesWithRaggedEdges) {
  TempDir dir;
  Builder b;
  b.f8("x.weight", {5, 7});
  b.f32("x.weight_scale", {3, 2}, {1, 2, 3, 4, 5, 6});  // ceil(5/2) x ceil(7/4)
  b.f32("x.bias", {5});
  const auto l = load(dir, b, ct_config("block", {2, 4}));
  WeightMap wm(*l.ckpt, l.quant);
  const auto x = wm.linear("x", 5, 7, Bias::kRequired);
  EXPECT_EQ(x.quant, ops::WeightQuant::kFp8Block);
  EXPECT_EQ(x.block_out, 2);
  EXPECT_EQ(x.block_in, 4);
  EXPECT_EQ(x.scale.shape, (Shape{3, 2}));
  EXPECT_EQ(x.scale.ptr<float>()[5], 6.0f);
  EXPECT_FALSE(x.bias.empty());
  EXPECT_TRUE(wm.finish().empty());
}

TEST(WeightMapTest, DeepSeekScaleInvAcrossShards) {
  TempDir dir;
  write_json(dir / "config.json", {{"quantization_config", ds_config(2, 2)}});
  std::map<std::string, SafetensorsWriter> shards;
  Builder s1, s2;
  s1.f8("m.weight", {4, 4});
  s2.bf16("m.weight_scale_inv", {2, 2}, {1, 2, 4, 8});  // the scale sits in the other shard
  shards.emplace("model-00001-of-00002.safetensors", std::move(s1.w));
  shards.emplace("model-00002-of-00002.safetensors", std::move(s2.w));
  write_sharded(dir.path(), shards);
  const auto ckpt = Checkpoint::open(dir.path());
  WeightMap wm(*ckpt, QuantConfig::from_hf(ckpt->config()));
  const auto m = wm.linear("m", 4, 4, Bias::kNone);
  EXPECT_EQ(m.quant, ops::WeightQuant::kFp8Block);
  EXPECT_EQ(m.scale.ptr<float>()[3], 8.0f);
  EXPECT_TRUE(wm.finish().empty());
}

TEST(WeightMapTest, DequantizeMatchesHandComputedValues) {
  TempDir dir;
  Builder b;
  // 0x38 = 1.0, 0x40 = 2.0, 0xB8 = -1.0, 0x3C = 1.5, 0x00 = 0, 0x7E = 448, 0x01 = 2^-9, 0x34 = 0.75
  b.f8("ch.weight", {2, 4}, {0x38, 0x40, 0xB8, 0x3C, 0x00, 0x7E, 0x01, 0x34});
  b.bf16("ch.weight_scale", {2, 1}, {0.5f, 2.0f});
  b.f8("bl.weight", {3, 3}, {0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x40, 0x40, 0xB8});
  b.f32("bl.weight_scale", {2, 2}, {1.0f, 10.0f, 100.0f, 0.25f});  // 2x2 blocks over [3, 3]
  const auto l = load(dir, b, ct_config("channel"));
  WeightMap wm(*l.ckpt, l.quant);
  const auto ch = wm.linear("ch", 2, 4, Bias::kNone, LinearLoad::kDequantize);
  EXPECT_EQ(ch.quant, ops::WeightQuant::kNone);
  EXPECT_EQ(ch.weight.dtype, DType::kBF16);
  EXPECT_EQ(ch.weight.shape, (Shape{2, 4}));
  EXPECT_TRUE(ch.scale.empty());
  const float want_ch[8] = {0.5f, 1.0f, -0.5f, 0.75f, 0.0f, 896.0f, 2.0f / 512.0f, 1.5f};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(bf16_to_f32(ch.weight.ptr<uint16_t>()[i]), want_ch[i]) << i;
  EXPECT_TRUE(wm.linear_records()[0].dequantized);
  EXPECT_EQ(wm.linear_records()[0].bytes, 2u * 4u * 2u);
  EXPECT_THAT(wm.finish(), ElementsAre("bl.weight", "bl.weight_scale"));

  TempDir d2;
  Builder b2;
  b2.f8("bl.weight", {3, 3}, {0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x40, 0x40, 0xB8});
  b2.f32("bl.weight_scale", {2, 2}, {1.0f, 10.0f, 100.0f, 0.25f});
  const auto l2 = load(d2, b2, ct_config("block", {2, 2}));
  WeightMap wm2(*l2.ckpt, l2.quant);
  const auto bl = wm2.linear("bl", 3, 3, Bias::kNone, LinearLoad::kDequantize);
  const float want_bl[9] = {1, 1, 10, 1, 1, 10, 200, 200, -0.25f};
  for (int i = 0; i < 9; ++i) EXPECT_EQ(bf16_to_f32(bl.weight.ptr<uint16_t>()[i]), want_bl[i]) << i;
}

TEST(WeightMapTest, DequantizeRandomMatchesNaiveReference) {
  TempDir dir;
  Builder b;
  const int64_t out = 37, in = 50, bo = 8, bi = 16;
  const int64_t so = (out + bo - 1) / bo, si = (in + bi - 1) / bi;
  std::mt19937 rng(7);
  std::vector<uint8_t> wq(static_cast<size_t>(out * in));
  for (auto& v : wq) {
    do v = static_cast<uint8_t>(rng());
    while ((v & 0x7f) == 0x7f);  // no NaNs
  }
  std::vector<float> scale(static_cast<size_t>(so * si));
  for (auto& s : scale) s = std::uniform_real_distribution<float>(0.001f, 2.0f)(rng);
  b.f8("w.weight", {out, in}, wq);
  b.f32("w.weight_scale_inv", {so, si}, scale);
  const auto l = load(dir, b, ds_config(bo, bi));
  WeightMap wm(*l.ckpt, l.quant);
  const auto w = wm.linear("w", out, in, Bias::kNone, LinearLoad::kDequantize);
  ASSERT_FALSE(w.weight.empty());
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t i = 0; i < in; ++i) {
      const float want = ref_f8(wq[o * in + i]) * scale[(o / bo) * si + i / bi];
      const float got = bf16_to_f32(w.weight.ptr<uint16_t>()[o * in + i]);
      // bf16 keeps 8 significant bits: round-to-nearest is within half an ulp (2^-8 relative), and it is
      // exactly torch's rounding of the f32 product.
      ASSERT_LE(std::fabs(got - want), std::fabs(want) * 0x1p-8f) << o << "," << i;
      ASSERT_EQ(w.weight.ptr<uint16_t>()[o * in + i], f32_to_bf16(want)) << o << "," << i;
    }
  }
}

TEST(WeightMapTest, Fp8ErrorCases) {
  TempDir dir;
  Builder b;
  b.f8("noscale.weight", {2, 2});
  b.f8("badshape.weight", {2, 2});
  b.bf16("badshape.weight_scale", {1, 2});
  b.bf16("plain.weight", {2, 2});
  b.bf16("plain.weight_scale", {2, 1});
  b.f8("lm_head.weight", {2, 2});
  b.bf16("lm_head.weight_scale", {2, 1});
  b.f8("model.layers.0.mlp.gate.weight", {2, 2});
  b.bf16("model.layers.0.mlp.gate.weight_scale", {2, 1});
  b.f8("zp.weight", {2, 2});
  b.bf16("zp.weight_scale", {2, 1});
  b.f32("zp.weight_zero_point", {2, 1}, {0, 3});
  b.f8("static.weight", {2, 2});
  b.bf16("static.weight_scale", {2, 1});
  b.f32("static.input_scale", {1});
  b.f8("wrongname.weight", {2, 2});
  b.f32("wrongname.weight_scale_inv", {1, 1});
  b.f8("i32scale.weight", {2, 2});
  b.i32("i32scale.weight_scale", {2, 1}, {1, 1});
  const auto l = load(dir, b, ct_config("channel"));
  WeightMap wm(*l.ckpt, l.quant);
  for (const char* p : {"noscale", "badshape", "plain", "lm_head", "model.layers.0.mlp.gate", "zp", "static",
                        "wrongname", "i32scale"})
    EXPECT_TRUE(wm.linear(p, 2, 2, Bias::kNone).weight.empty()) << p;
  const std::string msg = finish_error(wm);
  EXPECT_THAT(
      msg,
      HasSubstr("F8_E4M3 weight 'noscale.weight' in model.safetensors has no scale 'noscale.weight_scale'"));
  EXPECT_THAT(
      msg, HasSubstr("scale 'badshape.weight_scale' in model.safetensors of weight 'badshape.weight' [2, 2]: "
                     "expected shape [2, 1] or [2] (strategy channel), got [1, 2]"));
  EXPECT_THAT(
      msg,
      HasSubstr("'plain.weight_scale' in model.safetensors is present but weight 'plain.weight' is BF16"));
  EXPECT_THAT(msg,
              HasSubstr("'lm_head.weight' in model.safetensors is F8_E4M3 but module 'lm_head' is listed in "
                        "quantization_config.ignore"));
  EXPECT_THAT(msg, HasSubstr("module 'model.layers.0.mlp.gate' is listed"));
  EXPECT_THAT(
      msg, HasSubstr("'zp.weight_zero_point' in model.safetensors (zero point of 'zp.weight') has non-zero"));
  EXPECT_THAT(
      msg,
      HasSubstr("'static.input_scale' in model.safetensors (beside 'static.weight'): static activation"));
  EXPECT_THAT(msg, HasSubstr("has no scale 'wrongname.weight_scale' (found 'wrongname.weight_scale_inv'"));
  EXPECT_THAT(msg,
              HasSubstr("scale 'i32scale.weight_scale' in model.safetensors of weight 'i32scale.weight': "
                        "expected dtype BF16|F16|F32, got I32"));
  EXPECT_THAT(msg, HasSubstr("9 problems"));
}

TEST(WeightMapTest, Fp8WithoutQuantizationConfig) {
  TempDir dir;
  Builder b;
  b.f8("a.weight", {2, 2});
  b.bf16("a.weight_scale", {2, 1});
  const auto l = load(dir, b);
  WeightMap wm(*l.ckpt, l.quant);
  wm.linear("a", 2, 2, Bias::kNone);
  EXPECT_THAT(
      finish_error(wm),
      HasSubstr(
          "tensor 'a.weight' in model.safetensors is F8_E4M3 but config.json has no quantization_config"));
}

TEST(WeightMapTest, BlockScaleShapeMismatchNamesBlock) {
  TempDir dir;
  Builder b;
  b.f8("a.weight", {256, 300});
  b.f32("a.weight_scale_inv", {2, 2});
  const auto l = load(dir, b, ds_config(128, 128));
  WeightMap wm(*l.ckpt, l.quant);
  wm.linear("a", 256, 300, Bias::kNone);
  EXPECT_THAT(finish_error(wm), HasSubstr("expected shape [2, 3] (block 128x128), got [2, 2]"));
}

TEST(WeightMapTest, MisalignedTensorIsCopiedAligned) {
  TempDir dir;
  // One F8 byte first pushes the following BF16 tensor to an odd offset (legal, never written by HF).
  std::string header = R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]},)"
                       R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[1,5]}})";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  const std::string data = std::string("\x38", 1) + std::string("\x80\x3f\x00\x40", 4);  // bf16 1.0, 2.0
  testing::write_file(dir / "model.safetensors", testing::raw_safetensors(header, data));
  write_json(dir / "config.json", json::object());
  const auto ckpt = Checkpoint::open(dir.path());
  ASSERT_NE(reinterpret_cast<uintptr_t>(ckpt->find("b")->data) % 2, 0u);
  WeightMap wm(*ckpt, QuantConfig{});
  const Tensor t = wm.tensor("b", {2}, {DType::kBF16});
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 2, 0u);
  EXPECT_EQ(bf16_to_f32(t.ptr<uint16_t>()[0]), 1.0f);
  EXPECT_EQ(bf16_to_f32(t.ptr<uint16_t>()[1]), 2.0f);
  EXPECT_EQ(wm.take_owned().size(), 1u);
}

}  // namespace
}  // namespace tandem::loader
