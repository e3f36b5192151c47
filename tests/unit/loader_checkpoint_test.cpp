// Checkpoint::open over single-file and sharded folders, including shards the index forgets and every
// inconsistency between the index and the files.
#include "loader/checkpoint.h"
#include "loader/safetensors_writer.h"
#include "loader_test_util.h"

namespace tandem::loader {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_file;
using testing::write_json;

SafetensorsWriter writer_with(std::initializer_list<std::pair<std::string, Shape>> tensors, float base = 0) {
  SafetensorsWriter w;
  for (const auto& [name, shape] : tensors) {
    std::vector<float> v(static_cast<size_t>(shape.numel()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = base + static_cast<float>(i);
    w.add(name, DType::kF32, shape, v.data());
  }
  return w;
}

void write_config(const TempDir& dir) {
  write_json(dir / "config.json", {{"hidden_size", 4}});
}

TEST(CheckpointTest, SingleFileFolder) {
  TempDir dir;
  write_config(dir);
  write_json(dir / "generation_config.json", {{"temperature", 0.6}});
  writer_with({{"b.weight", {2, 3}}, {"a.weight", {4}}}, 10).write(dir / "model.safetensors");

  const auto c = Checkpoint::open(dir.path());
  EXPECT_EQ(c->dir(), dir.path());
  EXPECT_EQ(c->config().at("hidden_size"), 4);
  ASSERT_NE(c->generation_config(), nullptr);
  EXPECT_EQ(c->generation_config()->at("temperature"), 0.6);
  EXPECT_THAT(c->tensor_names(), ElementsAre("a.weight", "b.weight"));
  EXPECT_THAT(c->files(), ElementsAre("model.safetensors"));
  EXPECT_EQ(c->total_bytes(), (4u + 6u) * 4u);
  EXPECT_EQ(c->tensors_outside_index(), 0u);
  const TensorInfo* b = c->find("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, (Shape{2, 3}));
  EXPECT_EQ(b->file, "model.safetensors");
  EXPECT_EQ(static_cast<const float*>(b->data)[5], 15.0f);
  EXPECT_EQ(c->find("c.weight"), nullptr);
}

TEST(CheckpointTest, NoGenerationConfigIsNull) {
  TempDir dir;
  write_config(dir);
  writer_with({{"a", {1}}}).write(dir / "model.safetensors");
  EXPECT_EQ(Checkpoint::open(dir.path())->generation_config(), nullptr);
}

TEST(CheckpointTest, ConfigErrors) {
  TempDir dir;
  writer_with({{"a", {1}}}).write(dir / "model.safetensors");
  EXPECT_THAT(error_of([&] { Checkpoint::open(dir.path()); }), HasSubstr("has no config.json"));
  write_file(dir / "config.json", "{\"hidden_size\": ");
  const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
  EXPECT_THAT(msg, HasSubstr((dir / "config.json").string()));
  EXPECT_THAT(msg, HasSubstr("not valid JSON"));
  write_file(dir / "config.json", "[1]");
  EXPECT_THAT(error_of([&] { Checkpoint::open(dir.path()); }), HasSubstr("not a JSON object"));
  write_config(dir);
  write_file(dir / "generation_config.json", "nope");
  EXPECT_THAT(error_of([&] { Checkpoint::open(dir.path()); }),
              HasSubstr("generation_config.json is not valid JSON"));
  EXPECT_THAT(error_of([&] { Checkpoint::open(dir / "absent"); }), HasSubstr("does not exist"));
}

TEST(CheckpointTest, FolderWithoutWeights) {
  TempDir dir;
  write_config(dir);
  EXPECT_THAT(error_of([&] { Checkpoint::open(dir.path()); }), HasSubstr("nor any *.safetensors"));
}

TEST(CheckpointTest, ShardedIndex) {
  TempDir dir;
  write_config(dir);
  std::map<std::string, SafetensorsWriter> shards;
  shards.emplace("model-00001-of-00002.safetensors",
                 writer_with({{"x.weight", {2, 2}}, {"y.weight", {3}}}, 1));
  shards.emplace("model-00002-of-00002.safetensors", writer_with({{"z.weight", {5}}}, 100));
  write_sharded(dir.path(), shards);

  const auto c = Checkpoint::open(dir.path());
  EXPECT_THAT(c->tensor_names(), ElementsAre("x.weight", "y.weight", "z.weight"));
  EXPECT_THAT(c->files(),
              ElementsAre("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"));
  EXPECT_EQ(c->find("z.weight")->file, "model-00002-of-00002.safetensors");
  EXPECT_EQ(static_cast<const float*>(c->find("z.weight")->data)[4], 104.0f);
  EXPECT_EQ(c->total_bytes(), (4u + 3u + 5u) * 4u);
  EXPECT_EQ(c->tensors_outside_index(), 0u);

  // The index as written: total_size and every tensor mapped.
  const auto index = nlohmann::json::parse(testing::read_file(dir / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 48);
  EXPECT_EQ(index["weight_map"]["y.weight"], "model-00001-of-00002.safetensors");
}

TEST(CheckpointTest, TensorsOutsideTheIndexAreFoundByScanning) {
  TempDir dir;
  write_config(dir);
  std::map<std::string, SafetensorsWriter> shards;
  shards.emplace("model-00001-of-00001.safetensors", writer_with({{"model.layers.0.w", {2}}}));
  write_sharded(dir.path(), shards);
  // GLM exports have put the MTP layer in a file the index does not list.
  writer_with({{"model.layers.1.eh_proj.weight", {2, 4}}, {"model.layers.1.enorm.weight", {2}}})
      .write(dir / "mtp.safetensors");
  write_file(dir / "README.md", "not weights");

  const auto c = Checkpoint::open(dir.path());
  EXPECT_EQ(c->tensors_outside_index(), 2u);
  ASSERT_NE(c->find("model.layers.1.eh_proj.weight"), nullptr);
  EXPECT_EQ(c->find("model.layers.1.eh_proj.weight")->file, "mtp.safetensors");
  EXPECT_THAT(c->files(), ElementsAre("model-00001-of-00001.safetensors", "mtp.safetensors"));
}

TEST(CheckpointTest, IndexPointingToMissingFile) {
  TempDir dir;
  write_config(dir);
  writer_with({{"a", {1}}}).write(dir / "model-00001-of-00002.safetensors");
  write_json(dir / "model.safetensors.index.json",
             {{"weight_map",
               {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}}}});
  const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
  EXPECT_THAT(msg, HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_THAT(msg, HasSubstr("'b'"));
  EXPECT_THAT(msg, HasSubstr("does not exist"));
}

TEST(CheckpointTest, IndexPlacesTensorInFileThatLacksIt) {
  TempDir dir;
  write_config(dir);
  writer_with({{"a", {1}}}).write(dir / "s1.safetensors");
  writer_with({{"b", {1}}}).write(dir / "s2.safetensors");
  write_json(dir / "model.safetensors.index.json",
             {{"weight_map", {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}}}});
  const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
  EXPECT_THAT(msg, HasSubstr("tensor 'b' to s1.safetensors"));
  EXPECT_THAT(msg, HasSubstr("no such tensor"));
}

TEST(CheckpointTest, DuplicateTensorNamesBothFiles) {
  TempDir dir;
  write_config(dir);
  writer_with({{"a", {1}}, {"dup.weight", {2}}}).write(dir / "model.safetensors");
  writer_with({{"dup.weight", {2}}}).write(dir / "extra.safetensors");
  const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
  EXPECT_THAT(msg, HasSubstr("'dup.weight'"));
  EXPECT_THAT(msg, HasSubstr("extra.safetensors"));
  EXPECT_THAT(msg, HasSubstr("model.safetensors"));
}

TEST(CheckpointTest, MalformedIndex) {
  TempDir dir;
  write_config(dir);
  writer_with({{"a", {1}}}).write(dir / "model.safetensors");
  write_file(dir / "model.safetensors.index.json", "{");
  EXPECT_THAT(error_of([&] { Checkpoint::open(dir.path()); }),
              HasSubstr("model.safetensors.index.json is not valid JSON"));
  write_json(dir / "model.safetensors.index.json", {{"metadata", {}}});
  EXPECT_THAT(error_of([&] { Checkpoint::open(dir.path()); }), HasSubstr("\"weight_map\""));
  write_json(dir / "model.safetensors.index.json", {{"weight_map", {{"a", 3}}}});
  EXPECT_THAT(error_of([&] { Checkpoint::open(dir.path()); }), HasSubstr("weight_map[\"a\"]"));
}

TEST(CheckpointTest, CorruptShardNamesTheFile) {
  TempDir dir;
  write_config(dir);
  write_file(dir / "model.safetensors", "garbage!garbage!");
  EXPECT_THAT(error_of([&] { Checkpoint::open(dir.path()); }), HasSubstr("model.safetensors"));
}

// ---------------------------------------------------------------- hardening (issue 18)

// {"x": [[[...]]]} nested `depth` levels below the top object.
std::string deep_object(int depth) {
  return R"({"x": )" + std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']') + "}";
}

// Every JSON file of a checkpoint is parsed with a depth limit: a value nested 10^5 deep is an error naming
// the file, never a stack overflow later (copying, dumping or comparing such a value recurses once per
// level).
TEST(LoaderHardening, DeeplyNestedJsonFilesAreRefusedNamingTheFile) {
  for (const char* file : {"config.json", "generation_config.json", "model.safetensors.index.json"}) {
    TempDir dir;
    write_config(dir);
    writer_with({{"a", {1}}}).write(dir / "model.safetensors");
    write_file(dir / file, deep_object(100000));
    const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
    EXPECT_THAT(msg, HasSubstr((dir / file).string())) << file;
    EXPECT_THAT(msg, HasSubstr("nested deeper than 512 levels")) << file;
  }
  // Brackets inside strings are text, not nesting.
  TempDir dir;
  write_json(dir / "config.json", {{"hidden_size", 4}, {"note", std::string(100000, '[')}});
  writer_with({{"a", {1}}}).write(dir / "model.safetensors");
  EXPECT_EQ(Checkpoint::open(dir.path())->config().at("hidden_size"), 4);
}

// A folder with config.json, one real shard and an index whose weight_map sends tensor "b" to `file`.
void write_index_naming(const std::filesystem::path& dir, const std::string& file) {
  std::filesystem::create_directories(dir);
  write_json(dir / "config.json", {{"hidden_size", 4}});
  writer_with({{"a", {1}}}).write(dir / "model-00001-of-00002.safetensors");
  write_json(dir / "model.safetensors.index.json",
             {{"weight_map", {{"a", "model-00001-of-00002.safetensors"}, {"b", file}}}});
}

// The index is text anyone can write: a shard path leaving the folder would open (and echo in header errors)
// any file the server can read. Each error names the index, the entry and the path.
TEST(LoaderHardening, IndexPathsOutsideTheCheckpointAreRefused) {
  TempDir base;  // base/ckpt is the checkpoint; base/secret.safetensors a valid shard it must not reach
  writer_with({{"b", {1}}}).write(base / "secret.safetensors");
  const auto ckpt = base / "ckpt";
  for (const std::string& name :
       {std::string("../secret.safetensors"), (base / "secret.safetensors").string(),
        std::string("sub/../../secret.safetensors")}) {
    std::filesystem::create_directories(ckpt / "sub");
    write_index_naming(ckpt, name);
    const std::string msg = error_of([&] { Checkpoint::open(ckpt); });
    EXPECT_THAT(msg, HasSubstr("model.safetensors.index.json: weight_map[\"b\"]")) << name;
    EXPECT_THAT(msg, HasSubstr("'" + name + "'")) << name;
    EXPECT_THAT(msg, ::testing::AnyOf(HasSubstr("absolute path"), HasSubstr("'..'"))) << name;
  }
}

// Confinement is by name: a link the folder holds is the folder's choice, so a variant checkpoint made of links to
// another's shards (index included, config.json edited) loads.
TEST(LoaderHardening, IndexNamedSymlinksOfAFolderOfLinksLoad) {
  TempDir outside;
  writer_with({{"b", {1}}}).write(outside / "real-shard.safetensors");
  TempDir dir;
  write_index_naming(dir.path(), "model-00002-of-00002.safetensors");
  std::filesystem::create_symlink(outside / "real-shard.safetensors", dir / "model-00002-of-00002.safetensors");
  const auto c = Checkpoint::open(dir.path());
  ASSERT_NE(c->find("b"), nullptr);
  EXPECT_EQ(c->find("b")->file, "model-00002-of-00002.safetensors");
}

TEST(LoaderHardening, SymlinksInsideTheCheckpointTheHubCacheAndFolderFarmsLoad) {
  {  // a link to a file in the folder itself, named by the index
    TempDir dir;
    write_index_naming(dir.path(), "model-00002-of-00002.safetensors");
    std::filesystem::create_directories(dir / "store");
    writer_with({{"b", {1}}}).write(dir / "store" / "real.safetensors");
    std::filesystem::create_symlink("store/real.safetensors", dir / "model-00002-of-00002.safetensors");
    EXPECT_NE(Checkpoint::open(dir.path())->find("b"), nullptr);
  }
  {  // a folder of links made by hand (no index), e.g. to edit config.json: what the folder holds is opened
    TempDir outside;
    writer_with({{"a", {1}}}).write(outside / "model.safetensors");
    TempDir dir;
    write_config(dir);
    std::filesystem::create_symlink(outside / "model.safetensors", dir / "model.safetensors");
    EXPECT_NE(Checkpoint::open(dir.path())->find("a"), nullptr);
  }
  {  // a link to a file in the folder itself
    TempDir dir;
    write_config(dir);
    std::filesystem::create_directories(dir / "store");
    writer_with({{"a", {1}}}).write(dir / "store" / "real.safetensors");
    std::filesystem::create_symlink("store/real.safetensors", dir / "model.safetensors");
    EXPECT_NE(Checkpoint::open(dir.path())->find("a"), nullptr);
  }
  {  // huggingface_hub's cache: <repo>/snapshots/<rev>/<shard> -> ../../blobs/<hash>, index included
    TempDir repo;
    std::filesystem::create_directories(repo / "blobs");
    const auto snapshot = repo / "snapshots" / "0123abcd";
    write_index_naming(snapshot, "model-00002-of-00002.safetensors");
    writer_with({{"b", {1}}}).write(repo / "blobs" / "5f2e9a");
    std::filesystem::create_symlink("../../blobs/5f2e9a", snapshot / "model-00002-of-00002.safetensors");
    const auto c = Checkpoint::open(snapshot);
    ASSERT_NE(c->find("b"), nullptr);
    EXPECT_EQ(c->find("b")->file,
              "model-00002-of-00002.safetensors");  // the name in the folder, not the blob's
  }
}

}  // namespace
}  // namespace tandem::loader
