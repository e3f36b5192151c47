#include "tokenizer/bpe_model.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"

namespace tandem::tokenizer {
namespace {

// A merge candidate: the pair starting at symbol `pos`. HF's Word::merge_all pops the lowest rank first and, among
// equal ranks, the leftmost position.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t id;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

std::pair<std::string, std::string> parse_merge(const nlohmann::json& m, std::string_view where) {
  if (m.is_string()) {
    // Legacy form "left right": exactly one space (HF convert_merges_to_hashmap: split(' ') must give 2 parts).
    const std::string s = m.get<std::string>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
      fail("{}: merge {:?} is not of the form \"left right\"", where, s);
    }
    return {s.substr(0, space), s.substr(space + 1)};
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  }
  fail("{}: expected \"left right\" or [left, right], got {}", where, m.dump());
}

}  // namespace

BpeModel::BpeModel(BpeModel&& o) noexcept
    : vocab_(std::move(o.vocab_)),
      id_to_token_(std::move(o.id_to_token_)),
      merges_(std::move(o.merges_)),
      byte_level_input_(o.byte_level_input_),
      byte_ids_(o.byte_ids_),
      vocab_by_bytes_(std::move(o.vocab_by_bytes_)),
      unk_id_(o.unk_id_),
      fuse_unk_(o.fuse_unk_),
      byte_fallback_(o.byte_fallback_),
      ignore_merges_(o.ignore_merges_),
      continuing_subword_prefix_(std::move(o.continuing_subword_prefix_)),
      end_of_word_suffix_(std::move(o.end_of_word_suffix_)) {}

BpeModel BpeModel::from_json(const nlohmann::json& spec, std::string_view where, bool byte_level_input) {
  namespace jf = json_fields;
  const std::string type = jf::get_string(spec, "type", where);
  if (type != "BPE") fail("{}: model type '{}' is not supported (supported: BPE)", where, type);
  if (const nlohmann::json* d = jf::find(spec, "dropout"); d && !(d->is_number() && d->get<double>() == 0.0)) {
    fail("{}: BPE dropout {} is not supported (it makes encoding random)", jf::path(where, "dropout"), d->dump());
  }

  BpeModel m;
  m.byte_level_input_ = byte_level_input;
  m.fuse_unk_ = jf::get_bool(spec, "fuse_unk", where, false);
  m.byte_fallback_ = jf::get_bool(spec, "byte_fallback", where, false);
  m.ignore_merges_ = jf::get_bool(spec, "ignore_merges", where, false);
  m.continuing_subword_prefix_ = jf::get_optional_string(spec, "continuing_subword_prefix", where).value_or("");
  m.end_of_word_suffix_ = jf::get_optional_string(spec, "end_of_word_suffix", where).value_or("");

  const std::string vocab_where = jf::path(where, "vocab");
  const nlohmann::json& vocab = jf::require(spec, "vocab", where);
  if (!vocab.is_object()) fail("{}: expected an object of token: id", vocab_where);
  m.vocab_.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    const int32_t id = jf::as_id(id_json, jf::path(vocab_where, token));
    m.vocab_.emplace(token, id);
    if (static_cast<size_t>(id) >= m.id_to_token_.size()) m.id_to_token_.resize(id + 1);
    if (!m.id_to_token_[id].empty()) {
      fail("{}: id {} is used by both {:?} and {:?}", vocab_where, id, m.id_to_token_[id], token);
    }
    m.id_to_token_[id] = token;
  }

  if (const auto unk = jf::get_optional_string(spec, "unk_token", where)) {
    const auto it = m.vocab_.find(*unk);
    if (it == m.vocab_.end()) fail("{}: unk_token {:?} is not in the vocabulary", where, *unk);
    m.unk_id_ = it->second;
  }

  const std::string merges_where = jf::path(where, "merges");
  const nlohmann::json& merges = jf::require(spec, "merges", where);
  if (!merges.is_array()) fail("{}: expected an array", merges_where);
  m.merges_.reserve(merges.size());
  const size_t prefix_len = m.continuing_subword_prefix_.size();
  int32_t rank = 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    if (merges[i].is_string() && merges[i].get_ref<const std::string&>().starts_with("#version")) continue;
    const std::string item_where = jf::path(merges_where, i);
    const auto [left, right] = parse_merge(merges[i], item_where);
    const auto l = m.vocab_.find(left);
    const auto r = m.vocab_.find(right);
    if (l == m.vocab_.end()) fail("{}: token {:?} is not in the vocabulary", item_where, left);
    if (r == m.vocab_.end()) fail("{}: token {:?} is not in the vocabulary", item_where, right);
    // HF drops prefix_len bytes of the right part unconditionally when forming the merged token.
    if (right.size() < prefix_len) fail("{}: right part {:?} is shorter than the subword prefix", item_where, right);
    const std::string merged = left + right.substr(prefix_len);
    const auto n = m.vocab_.find(merged);
    if (n == m.vocab_.end()) fail("{}: merged token {:?} is not in the vocabulary", item_where, merged);
    m.merges_.insert_or_assign(l->second, r->second, {rank, n->second});
    ++rank;
  }

  for (int b = 0; b < 256; ++b) {
    const auto it = m.vocab_.find(byte_level::encode(std::string(1, static_cast<char>(b))));
    m.byte_ids_[b] = it == m.vocab_.end() ? -1 : it->second;
  }
  if (byte_level_input && m.ignore_merges_) {
    for (const auto& [token, id] : m.vocab_) {
      if (auto bytes = byte_level::decode(token)) m.vocab_by_bytes_.emplace(std::move(*bytes), id);
    }
  }
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

// One character (with prefix/suffix already applied) of BPE::merge_word: its id, else its bytes as <0xXX> tokens
// (byte_fallback), else the unk token (fused with a preceding unk if fuse_unk), else nothing (HF drops it).
void BpeModel::add_char(std::string_view symbol, bool& pending_unk, std::vector<int32_t>& symbols) const {
  if (const auto it = vocab_.find(std::string(symbol)); it != vocab_.end()) {
    if (pending_unk) {
      symbols.push_back(*unk_id_);
      pending_unk = false;
    }
    symbols.push_back(it->second);
    return;
  }
  if (byte_fallback_) {
    std::vector<int32_t> bytes;
    for (char b : symbol) {
      const auto it = vocab_.find(fmt::format("<0x{:02X}>", static_cast<uint8_t>(b)));
      if (it == vocab_.end()) break;
      bytes.push_back(it->second);
    }
    if (bytes.size() == symbol.size()) {
      // HF pushes these without first flushing a pending unk, which therefore lands after them.
      symbols.insert(symbols.end(), bytes.begin(), bytes.end());
      return;
    }
  }
  if (!unk_id_) return;
  if (pending_unk && !fuse_unk_) symbols.push_back(*unk_id_);
  pending_unk = true;
}

void BpeModel::initial_symbols(std::string_view piece, std::vector<int32_t>& symbols) const {
  const bool affixes = !continuing_subword_prefix_.empty() || !end_of_word_suffix_.empty();
  if (byte_level_input_ && !affixes) {
    bool pending_unk = false;
    for (char c : piece) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      if (id >= 0 && !pending_unk) {
        symbols.push_back(id);
      } else {
        add_char(byte_level::encode(std::string_view(&c, 1)), pending_unk, symbols);
      }
    }
    if (pending_unk) symbols.push_back(*unk_id_);
    return;
  }
  const std::string mapped = byte_level_input_ ? byte_level::encode(piece) : std::string();
  const std::string_view text = byte_level_input_ ? std::string_view(mapped) : piece;
  bool pending_unk = false;
  std::string symbol;
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = utf8::sequence_length(static_cast<uint8_t>(text[pos]));
    symbol.clear();
    if (pos > 0) symbol += continuing_subword_prefix_;
    symbol.append(text.substr(pos, len));
    pos += len;
    if (pos == text.size()) symbol += end_of_word_suffix_;
    add_char(symbol, pending_unk, symbols);
  }
  if (pending_unk) symbols.push_back(*unk_id_);
}

void BpeModel::merge(std::vector<int32_t>& ids) const {
  if (ids.size() < 2) return;
  thread_local std::vector<Symbol> sym;
  thread_local std::vector<Candidate> heap;
  sym.clear();
  heap.clear();
  const auto n = static_cast<int32_t>(ids.size());
  for (int32_t i = 0; i < n; ++i) sym.push_back({ids[i], i - 1, i + 1 < n ? i + 1 : -1, true});
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const MergeMap::Merge* m = merges_.find(ids[i], ids[i + 1])) heap.push_back({m->rank, i, m->id});
  }
  std::make_heap(heap.begin(), heap.end(), std::greater<>());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    // Skip stale entries: the pair at this position changed since the candidate was queued.
    const MergeMap::Merge* current = merges_.find(left.id, right.id);
    if (!current || current->id != top.id) continue;
    left.id = top.id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const MergeMap::Merge* m = merges_.find(sym[left.prev].id, left.id)) {
        heap.push_back({m->rank, left.prev, m->id});
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
      }
    }
    if (left.next >= 0) {
      if (const MergeMap::Merge* m = merges_.find(left.id, sym[left.next].id)) {
        heap.push_back({m->rank, top.pos, m->id});
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
      }
    }
  }
  ids.clear();
  for (int32_t i = 0; i >= 0; i = sym[i].next) ids.push_back(sym[i].id);
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (byte_level_input_) {
      if (const auto it = vocab_by_bytes_.find(std::string(piece)); it != vocab_by_bytes_.end()) {
        out.push_back(it->second);
        return;
      }
    } else if (const auto id = token_to_id(piece)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = piece.size() < kMaxCachedLength;
  CacheShard& shard = cache_[std::hash<std::string_view>()(piece) % kCacheShards];
  thread_local std::string key;
  if (cacheable) {
    key.assign(piece);
    std::lock_guard lock(shard.mutex);
    if (const auto it = shard.words.find(key); it != shard.words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  thread_local std::vector<int32_t> ids;
  ids.clear();
  initial_symbols(piece, ids);
  merge(ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard lock(shard.mutex);
    if (shard.words.size() >= kShardCapacity) shard.words.clear();
    shard.words.emplace(key, ids);
  }
}

}  // namespace tandem::tokenizer
