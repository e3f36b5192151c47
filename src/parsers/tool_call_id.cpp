#include "parsers/tool_call_id.h"

#include <cstdint>

namespace tandem::parsers {
namespace {

uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::string tool_call_id(std::string_view seed, int index) {
  uint64_t state = fnv1a(std::to_string(index), fnv1a(seed) ^ 0x746f6f6c63616c6cull);  // "toolcall"
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "call_";
  const uint64_t words[2] = {splitmix64(state), splitmix64(state)};
  for (int i = 0; i < 24; ++i) id += kHex[(words[i / 16] >> (4 * (i % 16))) & 0xF];
  return id;
}

}  // namespace tandem::parsers
