#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/tokenizer_components.h"

namespace tandem::tokenizer {

Tokenizer::Tokenizer(std::unique_ptr<Components> c) : c_(std::move(c)) {}
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (const auto bad = utf8::first_invalid(text)) {
    fail("tokenizer encode: input is not valid UTF-8 (byte {} of {})", *bad, text.size());
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  if (add_special_tokens) ids.insert(ids.end(), c_->prefix_ids.begin(), c_->prefix_ids.end());

  thread_local std::vector<Segment> raw_segments;
  thread_local std::vector<Segment> normalized_segments;
  thread_local std::vector<std::string> pieces;
  const auto encode_text = [&](std::string_view segment) {
    pieces.clear();
    c_->pre_tokenizer.pre_tokenize(segment, pieces);
    for (const std::string& piece : pieces) c_->model.tokenize(piece, ids);
  };

  raw_segments.clear();
  c_->added.split(text, /*normalized_set=*/false, raw_segments);
  for (const Segment& seg : raw_segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string_view part = text.substr(seg.begin, seg.end - seg.begin);
    std::string normalized;
    if (!c_->normalizer.is_identity()) {
      normalized = c_->normalizer.normalize(part);
      part = normalized;
    }
    if (!c_->added.has_normalized_tokens()) {
      encode_text(part);
      continue;
    }
    normalized_segments.clear();
    c_->added.split(part, /*normalized_set=*/true, normalized_segments);
    for (const Segment& sub : normalized_segments) {
      if (sub.id >= 0) {
        ids.push_back(sub.id);
      } else {
        encode_text(part.substr(sub.begin, sub.end - sub.begin));
      }
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), c_->suffix_ids.begin(), c_->suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (!has_token(id) || (skip_special_tokens && is_special(id))) continue;
    bytes += c_->bytes[id];
  }
  std::string text = utf8::decode_lossy(bytes);
  return clean_up_tokenization_spaces_ ? clean_up_tokenization(text) : text;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = c_->added_ids.find(std::string(token)); it != c_->added_ids.end()) return it->second;
  return c_->model.token_to_id(token);
}

bool Tokenizer::has_token(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < c_->kinds.size() && c_->kinds[id] != TokenKind::kNone;
}

std::string Tokenizer::id_to_token(int32_t id) const { return has_token(id) ? c_->strings[id] : std::string(); }

bool Tokenizer::is_special(int32_t id) const { return has_token(id) && c_->kinds[id] == TokenKind::kSpecial; }

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(c_->kinds.size()); }

std::string Tokenizer::token_bytes(int32_t id) const { return has_token(id) ? c_->bytes[id] : std::string(); }

std::string clean_up_tokenization(std::string_view text) {
  static constexpr std::pair<std::string_view, std::string_view> kReplacements[] = {
      {" .", "."},     {" ?", "?"},     {" !", "!"},     {" ,", ","},       {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"},   {" 's", "'s"},   {" 've", "'ve"},   {" 're", "'re"}};
  std::string s(text);
  for (const auto& [from, to] : kReplacements) {
    // Python str.replace: non-overlapping occurrences, left to right.
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
      out.append(s, pos, hit - pos);
      out += to;
    }
    out.append(s, pos);
    s = std::move(out);
  }
  return s;
}

}  // namespace tandem::tokenizer
