#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "core/utf8.h"
#include "tokenizer/normalizer.h"

namespace tandem::tokenizer {
namespace {

// Rust regex's Unicode \w (UTS #18 Annex C), which HF uses to decide single_word: Alphabetic, marks, decimal
// numbers, connector punctuation and the joiners.
constexpr const char* kWordClass = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]";

bool is_white_space(char32_t c) {  // Rust's \s and char::is_whitespace: the White_Space property
  return (c >= 0x9 && c <= 0xD) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Start of the run of white space that ends `text`, or text.size() if there is none (HF space_leftmost_at_end).
size_t trailing_space_start(std::string_view text) {
  size_t run_start = text.size();
  bool in_run = false;
  for (size_t pos = 0; pos < text.size();) {
    const size_t at = pos;
    if (is_white_space(utf8::decode(text, pos))) {
      if (!in_run) run_start = at;
      in_run = true;
    } else {
      in_run = false;
    }
  }
  return in_run ? run_start : text.size();
}

// Length of the run of white space that starts `text` (HF space_rightmost_at_start).
size_t leading_space_length(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = pos;
    if (!is_white_space(utf8::decode(text, next))) break;
    pos = next;
  }
  return pos;
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token) {
  if (key.empty()) return;
  first_byte[static_cast<uint8_t>(key[0])] = true;
  int32_t node = 0;
  for (char ch : key) {
    const auto b = static_cast<uint8_t>(ch);
    auto& next = nodes[node].next;
    auto it = std::lower_bound(next.begin(), next.end(), b, [](const auto& e, uint8_t v) { return e.first < v; });
    if (it != next.end() && it->first == b) {
      node = it->second;
    } else {
      const auto child = static_cast<int32_t>(nodes.size());
      next.insert(it, {b, child});
      nodes.emplace_back();
      node = child;
    }
  }
  // The first token with a given content keeps it (HF maps each content to one id).
  if (nodes[node].token < 0) nodes[node].token = token;
}

std::pair<size_t, int32_t> AddedVocabulary::Trie::longest(std::string_view text, size_t pos) const {
  std::pair<size_t, int32_t> best{0, -1};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const auto& next = nodes[node].next;
    auto it = std::lower_bound(next.begin(), next.end(), b, [](const auto& e, uint8_t v) { return e.first < v; });
    if (it == next.end() || it->first != b) break;
    node = it->second;
    if (nodes[node].token >= 0) best = {i + 1 - pos, nodes[node].token};
  }
  return best;
}

AddedVocabulary::AddedVocabulary()
    : word_end_(std::string(kWordClass) + "\\z", "single_word \\w"),
      word_start_(std::string("^") + kWordClass, "single_word \\w") {}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer& normalizer)
    : AddedVocabulary() {
  tokens_ = std::move(tokens);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (t.normalized) {
      normalized_.insert(normalizer.normalize(t.content), static_cast<int32_t>(i));
    } else {
      raw_.insert(t.content, static_cast<int32_t>(i));
    }
  }
}

AddedVocabulary::~AddedVocabulary() = default;
AddedVocabulary::AddedVocabulary(AddedVocabulary&&) noexcept = default;
AddedVocabulary& AddedVocabulary::operator=(AddedVocabulary&&) noexcept = default;

void AddedVocabulary::split(std::string_view text, bool normalized_set, std::vector<Segment>& out) const {
  const Trie& trie = normalized_set ? normalized_ : raw_;
  size_t start_offset = 0;  // end of the previous accepted match
  size_t pos = 0;           // where the automaton resumes: after the previous match, accepted or not
  while (pos < text.size()) {
    if (!trie.first_byte[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [len, index] = trie.longest(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + len;
    pos = stop;
    const AddedToken& t = tokens_[index];
    if (t.single_word) {
      const bool start_space = start == 0 || !word_end_.search(text.substr(0, start));
      const bool stop_space = stop == text.size() || !word_start_.search(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
    if (t.rstrip) stop += leading_space_length(text.substr(stop));
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, t.id});
    start_offset = stop;
  }
  if (start_offset != text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace tandem::tokenizer
