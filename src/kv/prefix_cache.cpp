#include "kv/prefix_cache.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::kv {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

PrefixCache::PrefixCache(BlockAllocator& alloc, int block_size, uint64_t salt, bool path_in_key)
    : alloc_(alloc), block_size_(block_size), salt_(mix(salt ^ 0x7a6e646d70726678ull)), path_in_key_(path_in_key),
      meta_(static_cast<size_t>(alloc.num_total())) {
  TANDEM_CHECK(block_size > 0, "prefix cache block size {}", block_size);
  alloc_.set_on_evict([this](int32_t b) { forget(b); });
}

PrefixCache::~PrefixCache() { alloc_.set_on_evict(nullptr); }

uint64_t PrefixCache::chain_key(uint64_t parent, std::span<const int32_t> tokens, uint32_t tag) {
  uint64_t h = mix(parent + 0x9e3779b97f4a7c15ull * (tag + 1));
  for (int32_t t : tokens) h = mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x632be59bd9b4e019ull));
  return mix(h ^ tokens.size());
}

uint32_t PrefixCache::tag(int64_t block, int64_t n_prompt) const {
  // Positions [block * B, block * B + tag) were prompt positions (prefill rows); the rest generated ones.
  if (!path_in_key_) return 0;
  return static_cast<uint32_t>(std::clamp<int64_t>(n_prompt - block * block_size_, 0, block_size_));
}

PrefixMatch PrefixCache::match(std::span<const int32_t> tokens, int64_t n_prompt) const {
  PrefixMatch m;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t max_blocks = n > 0 ? (n - 1) / block_size_ : 0;
  uint64_t parent = salt_;
  for (int64_t j = 0; j < max_blocks; ++j) {
    const auto toks = tokens.subspan(static_cast<size_t>(j * block_size_), static_cast<size_t>(block_size_));
    const uint32_t t = tag(j, n_prompt);
    const uint64_t key = chain_key(parent, toks, t);
    const auto it = table_.find(key);
    if (it == table_.end()) break;
    const Meta& e = meta_[it->second];
    if (e.parent != parent || e.tag != t || !std::equal(toks.begin(), toks.end(), e.tokens.begin())) break;
    m.blocks.push_back(it->second);
    m.keys.push_back(key);
    parent = key;
  }
  const int64_t h = static_cast<int64_t>(m.blocks.size());
  while (m.draft_blocks < h && meta_[m.blocks[m.draft_blocks]].draft_next >= 0) ++m.draft_blocks;
  // A draft-valid block's last position paired the token that followed it; inside the chain the next block's
  // tokens match, so only the chain's last block needs the check.
  if (m.draft_blocks == h && h > 0 && meta_[m.blocks[h - 1]].draft_next != tokens[h * block_size_]) --m.draft_blocks;
  return m;
}

void PrefixCache::insert(int32_t b, uint64_t key, uint64_t parent, uint32_t t, std::span<const int32_t> toks) {
  Meta& e = meta_[b];
  e.key = key;
  e.parent = parent;
  e.keyed = true;
  e.tag = t;
  e.draft_next = -1;
  e.tokens.assign(toks.begin(), toks.end());
  table_[key] = b;
  alloc_.set_cached(b, true);
}

void PrefixCache::forget(int32_t b) {
  Meta& e = meta_[b];
  if (!e.keyed) return;
  const auto it = table_.find(e.key);
  if (it != table_.end() && it->second == b) table_.erase(it);
  e = Meta{};
  alloc_.set_cached(b, false);
}

void PrefixCache::publish(PrefixCursor& cur, std::span<const int32_t> blocks, std::span<const int32_t> tokens,
                          int64_t n_prompt, int64_t n_target, int64_t n_draft) {
  const int64_t B = block_size_;
  for (auto j = static_cast<int64_t>(cur.keys.size()); (j + 1) * B <= n_target; ++j) {
    TANDEM_CHECK(j < static_cast<int64_t>(blocks.size()), "prefix cache: block {} of a table of {}", j, blocks.size());
    const auto toks = tokens.subspan(static_cast<size_t>(j * B), static_cast<size_t>(B));
    const uint64_t parent = j > 0 ? cur.keys[j - 1] : salt_;
    const uint32_t t = tag(j, n_prompt);
    const uint64_t key = chain_key(parent, toks, t);
    cur.keys.push_back(key);
    // Another block may hold the same contents already (two requests ran the same prefix at once): this one then
    // stays private and is freed, not cached, when its sequence lets go of it.
    if (!table_.contains(key)) insert(blocks[j], key, parent, t, toks);
  }
  int64_t j = cur.draft_blocks;
  for (; j < static_cast<int64_t>(cur.keys.size()) && (j + 1) * B <= n_draft; ++j) {
    const auto it = table_.find(cur.keys[j]);
    if (it == table_.end()) continue;  // flushed or evicted meanwhile
    const int32_t mine = blocks[j];
    if (meta_[it->second].draft_next >= 0) continue;
    if (it->second != mine) {  // the cached copy lacks the draft's KV and this block has it: it takes the key
      const Meta old = meta_[it->second];
      forget(it->second);
      insert(mine, old.key, old.parent, old.tag, old.tokens);
    }
    meta_[mine].draft_next = tokens[(j + 1) * B];
  }
  cur.draft_blocks = j;
}

void PrefixCache::flush() {
  std::vector<int32_t> keyed;
  keyed.reserve(table_.size());
  for (const auto& [key, b] : table_) keyed.push_back(b);
  for (int32_t b : keyed) forget(b);
}

}  // namespace tandem::kv
