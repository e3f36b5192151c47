// SafetensorsFile parsing and SafetensorsWriter output: round trips, exact bytes, every malformed header,
// truncation at every cut point, and a byte-flip / truncation fuzz loop that may only ever throw
// tandem::Error.
#include <cstring>
#include <random>

#include "loader/safetensors.h"
#include "loader/safetensors_writer.h"
#include "loader_test_util.h"

namespace tandem::loader {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
using testing::raw_safetensors;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + 31 * i + (i >> 3));
  return v;
}

TEST(SafetensorsTest, RoundTripEveryDtype) {
  TempDir dir;
  struct Case {
    std::string name;
    DType dtype;
    Shape shape;
  };
  const std::vector<Case> cases = {
      {"f32", DType::kF32, {2, 3}},     {"bf16", DType::kBF16, {5}},     {"f16", DType::kF16, {1, 2, 3, 1}},
      {"f8", DType::kF8E4M3, {3, 7}},   {"i32", DType::kI32, {4}},       {"i64", DType::kI64, {2, 2}},
      {"scalar", DType::kF32, Shape{}}, {"empty", DType::kBF16, {0, 3}}, {"odd.f8", DType::kF8E4M3, {1}},
  };
  SafetensorsWriter w;
  std::map<std::string, std::vector<uint8_t>> bytes;
  uint8_t seed = 1;
  for (const auto& c : cases) {
    bytes[c.name] = pattern_bytes(static_cast<size_t>(c.shape.numel()) * dtype_size(c.dtype), seed++);
    w.add(c.name, c.dtype, c.shape, bytes[c.name].data());
  }
  w.set_metadata({{"format", "pt"}, {"note", "x"}});
  w.write(dir / "m.safetensors");

  const auto f = SafetensorsFile::open(dir / "m.safetensors");
  ASSERT_EQ(f->tensors().size(), cases.size());
  EXPECT_EQ(f->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "x"}}));
  for (size_t i = 1; i < f->tensors().size(); ++i) EXPECT_LT(f->tensors()[i - 1].name, f->tensors()[i].name);
  for (const auto& c : cases) {
    const TensorInfo* t = f->find(c.name);
    ASSERT_NE(t, nullptr) << c.name;
    EXPECT_EQ(t->dtype, c.dtype) << c.name;
    EXPECT_EQ(t->shape, c.shape) << c.name;
    EXPECT_EQ(t->file, "m.safetensors");
    ASSERT_EQ(t->nbytes, bytes[c.name].size()) << c.name;
    if (t->nbytes > 0) {
      EXPECT_EQ(std::memcmp(t->data, bytes[c.name].data(), t->nbytes), 0) << c.name;
    }
    // Widest dtypes first keeps every tensor aligned to its element size.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % dtype_size(c.dtype), 0u) << c.name;
    const Tensor v = t->view();
    EXPECT_EQ(v.data, t->data);
    EXPECT_EQ(v.nbytes(), t->nbytes);
  }
  EXPECT_EQ(f->find("nope"), nullptr);
}

TEST(SafetensorsTest, WriterProducesExactHfLayout) {
  TempDir dir;
  SafetensorsWriter w;
  const uint16_t b[1] = {0x3f80};    // bf16 1.0
  const float a[2] = {1.0f, -2.0f};  // f32, laid out before the bf16 tensor despite its name order
  w.add("z", DType::kBF16, {1}, b);
  w.add("a", DType::kF32, {2}, a);
  w.write(dir / "x.safetensors");
  std::string header =
      R"({"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},"z":{"data_offsets":[8,10],"dtype":"BF16","shape":[1]}})";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  std::string data(10, '\0');
  std::memcpy(data.data(), a, 8);
  std::memcpy(data.data() + 8, b, 2);
  EXPECT_EQ(read_file(dir / "x.safetensors"), raw_safetensors(header, data));

  // Independently parse the header: contiguous offsets covering all data, length a multiple of 8.
  const std::string bytes = read_file(dir / "x.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(8 + n + 10, bytes.size());
}

TEST(SafetensorsTest, WriterRejectsDuplicates) {
  SafetensorsWriter w;
  const float x = 1;
  w.add("a", DType::kF32, {1}, &x);
  EXPECT_THAT(error_of([&] { w.add("a", DType::kF32, {1}, &x); }), HasSubstr("'a' added twice"));
}

struct Malformed {
  std::string label;
  std::string bytes;
  std::vector<std::string> expect;  // substrings besides the file name
};

std::vector<Malformed> malformed_cases() {
  const std::string d16(16, '\0');
  auto one = [](const std::string& entry) { return R"({"w":)" + entry + "}"; };
  return {
      {"empty", "", {"0 bytes", "shorter than"}},
      {"seven bytes", std::string(7, '\0'), {"7 bytes"}},
      {"header longer than file", raw_safetensors("{}", "", 100), {"header length 100", "exceeds"}},
      {"absurd header", raw_safetensors("{}", "", uint64_t{1} << 40), {"absurd"}},
      {"not json", raw_safetensors("{not json", d16), {"not valid JSON"}},
      {"not an object", raw_safetensors("[1,2]", d16), {"not a JSON object"}},
      {"entry not object", raw_safetensors(one("3"), d16), {"'w'", "not an object"}},
      {"no dtype",
       raw_safetensors(one(R"({"shape":[2],"data_offsets":[0,8]})"), d16),
       {"'w'", "lacks 'dtype'"}},
      {"no shape",
       raw_safetensors(one(R"({"dtype":"F32","data_offsets":[0,8]})"), d16),
       {"'w'", "lacks 'shape'"}},
      {"no offsets",
       raw_safetensors(one(R"({"dtype":"F32","shape":[2]})"), d16),
       {"'w'", "lacks 'data_offsets'"}},
      {"dtype not string",
       raw_safetensors(one(R"({"dtype":5,"shape":[2],"data_offsets":[0,8]})"), d16),
       {"'w'", "'dtype' must be a string"}},
      {"shape not array",
       raw_safetensors(one(R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})"), d16),
       {"'w'", "'shape' must be an array"}},
      {"negative dim",
       raw_safetensors(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), d16),
       {"'w'", "non-negative integers", "-2"}},
      {"fractional dim",
       raw_safetensors(one(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,8]})"), d16),
       {"'w'", "'shape'"}},
      {"offsets wrong arity",
       raw_safetensors(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"), d16),
       {"'w'", "'data_offsets' must be an array [begin, end]"}},
      {"offsets not ints",
       raw_safetensors(one(R"({"dtype":"F32","shape":[2],"data_offsets":["0",8]})"), d16),
       {"'w'", "'data_offsets'"}},
      {"unsupported dtype",
       raw_safetensors(one(R"({"dtype":"F8_E5M2","shape":[2],"data_offsets":[0,2]})"), d16),
       {"'w'", "unsupported dtype F8_E5M2"}},
      {"rank 5",
       raw_safetensors(one(R"({"dtype":"F8_E4M3","shape":[1,1,1,1,2],"data_offsets":[0,2]})"), d16),
       {"'w'", "rank 5"}},
      {"truncated data",
       raw_safetensors(one(R"({"dtype":"F32","shape":[8],"data_offsets":[0,32]})"), d16),
       {"'w'", "[0, 32]", "16 data bytes", "truncated"}},
      {"end before begin",
       raw_safetensors(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), d16),
       {"'w'", "end before begin"}},
      {"size mismatch",
       raw_safetensors(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), d16),
       {"'w'", "span 8 bytes", "needs 12"}},
      {"overflowing shape",
       raw_safetensors(one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"), d16),
       {"'w'", "overflows"}},
      {"absurd dim",
       raw_safetensors(one(R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]})"), d16),
       {"'w'", "absurd"}},
      {"overlap",
       raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                       d16),
       {"'a'", "'b'", "overlap"}},
      {"metadata not object", raw_safetensors(R"({"__metadata__":[1]})", d16), {"__metadata__"}},
      {"metadata not strings", raw_safetensors(R"({"__metadata__":{"k":1}})", d16), {"__metadata__['k']"}},
  };
}

TEST(SafetensorsTest, EveryMalformedHeaderIsAnErrorNamingFileAndTensor) {
  TempDir dir;
  int i = 0;
  for (const auto& c : malformed_cases()) {
    const auto path = dir / ("bad" + std::to_string(i++) + ".safetensors");
    write_file(path, c.bytes);
    const std::string msg = error_of([&] { SafetensorsFile::open(path); });
    EXPECT_THAT(msg, HasSubstr(path.string())) << c.label;
    for (const auto& s : c.expect) EXPECT_THAT(msg, HasSubstr(s)) << c.label;
  }
}

// A header value nested 10^5 deep parsed (nlohmann's parser is iterative) but every later dump or copy of it
// recursed once per level and overflowed the stack: it must be refused while parsing, naming the file.
TEST(LoaderHardening, DeeplyNestedHeaderIsAnErrorNotAStackOverflow) {
  TempDir dir;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string d16(16, '\0');
  const std::pair<const char*, std::string> cases[] = {
      {"tensor entry", R"({"w":)" + deep + "}"},
      {"metadata value", R"({"__metadata__":{"k":)" + deep + "}}"},
      {"unterminated", std::string(100000, '{')},
  };
  for (const auto& [label, header] : cases) {
    const auto path = dir / (std::string("deep_") + label + ".safetensors");
    write_file(path, raw_safetensors(header, d16));
    const std::string msg = error_of([&] { SafetensorsFile::open(path); });
    EXPECT_THAT(msg, HasSubstr(path.string())) << label;
    EXPECT_THAT(msg, HasSubstr("nested deeper than 512 levels")) << label;
  }
  // At the limit the header is parsed and judged on its content (a metadata value must be a string).
  const std::string at_limit = std::string(510, '[') + std::string(510, ']');  // + 2 object levels = 512
  const auto path = dir / "at_limit.safetensors";
  write_file(path, raw_safetensors(R"({"__metadata__":{"k":)" + at_limit + "}}", d16));
  const std::string msg = error_of([&] { SafetensorsFile::open(path); });
  EXPECT_THAT(msg, HasSubstr("__metadata__['k'] must be a string"));
}

TEST(SafetensorsTest, ValidEdgeCasesParse) {
  TempDir dir;
  // Null metadata, trailing padding spaces, a zero-size tensor sharing an offset with a real one, gaps.
  const std::string header = R"({"__metadata__":null,"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
                             R"("e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},)"
                             R"("b":{"dtype":"I32","shape":[],"data_offsets":[12,16]}}    )";
  write_file(dir / "ok.safetensors", raw_safetensors(header, std::string(16, '\1')));
  const auto f = SafetensorsFile::open(dir / "ok.safetensors");
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->find("b")->shape.rank, 0);
  EXPECT_EQ(f->find("b")->nbytes, 4u);
  EXPECT_EQ(f->find("e")->nbytes, 0u);
  EXPECT_TRUE(f->metadata().empty());
}

TEST(SafetensorsTest, MissingFileAndDirectory) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(dir / "absent.safetensors"); }),
              HasSubstr("absent.safetensors"));
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(dir.path()); }), HasSubstr("not a regular file"));
}

std::string valid_file_bytes(const TempDir& dir) {
  SafetensorsWriter w;
  const auto a = pattern_bytes(4 * 6, 3), b = pattern_bytes(2 * 5, 9), c = pattern_bytes(7, 11);
  w.add("model.layers.0.mlp.down_proj.weight", DType::kF32, {2, 3}, a.data());
  w.add("model.norm.weight", DType::kBF16, {5}, b.data());
  w.add("model.layers.0.mlp.down_proj.weight_scale", DType::kF8E4M3, {7, 1}, c.data());
  w.set_metadata({{"format", "pt"}});
  w.write(dir / "valid.safetensors");
  return read_file(dir / "valid.safetensors");
}

TEST(SafetensorsTest, TruncatedAtEveryCutPoint) {
  TempDir dir;
  const std::string full = valid_file_bytes(dir);
  const auto path = dir / "cut.safetensors";
  for (size_t cut = 0; cut < full.size(); ++cut) {
    write_file(path, full.substr(0, cut));
    const std::string msg = error_of([&] { SafetensorsFile::open(path); });
    EXPECT_THAT(msg, HasSubstr(path.string())) << "cut at " << cut;
  }
  // A cut inside the data names the tensor whose bytes are missing and the byte counts.
  write_file(path, full.substr(0, full.size() - 1));
  const std::string msg = error_of([&] { SafetensorsFile::open(path); });
  EXPECT_THAT(msg, HasSubstr("truncated"));
  EXPECT_THAT(msg, HasSubstr("model.layers.0.mlp.down_proj.weight_scale"));  // the F8 tensor is laid out last
}

// Random byte flips (mostly in the header, where they matter) and truncations of a valid file: opening must
// either succeed with every tensor inside the file or throw tandem::Error; anything else fails the test, and
// a crash or out-of-bounds read kills it (ASan build).
TEST(SafetensorsTest, FuzzFlipsAndTruncationsOnlyThrowTandemError) {
  TempDir dir;
  const std::string full = valid_file_bytes(dir);
  uint64_t header_len = 0;
  std::memcpy(&header_len, full.data(), 8);
  const auto path = dir / "fuzz.safetensors";
  std::mt19937_64 rng(12345);
  int opened = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string bytes = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t limit = rng() % 5 == 0 ? bytes.size() : 8 + header_len;
      const size_t pos = rng() % limit;
      switch (rng() % 3) {
        case 0:
          bytes[pos] = static_cast<char>(bytes[pos] ^ (1u << (rng() % 8)));
          break;
        case 1:
          bytes[pos] = static_cast<char>(rng() % 256);
          break;
        case 2:
          bytes[pos] = "0123456789[]{},:\"-. eE"[rng() % 22];
          break;  // JSON-ish bytes keep it parseable
      }
    }
    if (rng() % 4 == 0) bytes.resize(rng() % (bytes.size() + 1));
    write_file(path, bytes);
    try {
      const auto f = SafetensorsFile::open(path);
      ++opened;
      uint64_t sum = 0;
      for (const auto& t : f->tensors()) {
        ASSERT_EQ(t.nbytes, static_cast<size_t>(t.shape.numel()) * dtype_size(t.dtype));
        ASSERT_LE(t.nbytes, f->file_size());
        for (size_t i = 0; i < t.nbytes; ++i) sum += static_cast<const uint8_t*>(t.data)[i];
      }
      (void)sum;
    } catch (const Error& e) {
      ++rejected;
      ASSERT_THAT(std::string(e.what()), HasSubstr(path.string())) << "iteration " << iter;
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << ": non-tandem exception " << e.what();
    }
  }
  // Both outcomes must actually occur, or the loop is not exercising the parser.
  EXPECT_GT(opened, 50);
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace tandem::loader
