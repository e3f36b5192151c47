#include "tokenizer/detokenizer.h"

#include "core/utf8.h"

namespace tandem::tokenizer {
namespace {

// transformers' cleanup only removes a space that starts a pattern of at most 4 bytes (" n't"), so a match that
// crosses position k has its space among the 3 bytes before k. If none of those 3 bytes is a space, none of them
// is ever removed, so no pass (not even after earlier passes removed spaces further left) sees a match crossing k:
// cleanup(a + b) == cleanup(a) + cleanup(b) when `a` ends with 3 non-space bytes.
size_t cleanup_cut(std::string_view text) {
  constexpr size_t kWindow = 3;
  for (size_t k = text.size(); k >= kWindow; --k) {
    const bool char_boundary = k == text.size() || (static_cast<uint8_t>(text[k]) & 0xC0) != 0x80;
    if (char_boundary && text.substr(k - kWindow, kWindow).find(' ') == std::string_view::npos) return k;
  }
  return 0;
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens)
    : tok_(&tok), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDetokenizer::push(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    if (!tok_->has_token(id) || (skip_special_tokens_ && tok_->is_special(id))) continue;
    pending_bytes_ += tok_->token_bytes(id);
  }
  // Decoding stops before an incomplete sequence at the end: every earlier decision of the lossy decoder only
  // depends on bytes already here, so the text emitted now is a prefix of the one-shot decode.
  const size_t hold = utf8::incomplete_suffix_length(pending_bytes_);
  std::string text = utf8::decode_lossy(std::string_view(pending_bytes_).substr(0, pending_bytes_.size() - hold));
  pending_bytes_.erase(0, pending_bytes_.size() - hold);
  if (!tok_->clean_up_tokenization_spaces()) return text;
  pending_text_ += text;
  const size_t cut = cleanup_cut(pending_text_);
  std::string out = clean_up_tokenization(std::string_view(pending_text_).substr(0, cut));
  pending_text_.erase(0, cut);
  return out;
}

std::string IncrementalDetokenizer::finish() {
  std::string text = utf8::decode_lossy(pending_bytes_);
  pending_bytes_.clear();
  if (!tok_->clean_up_tokenization_spaces()) return text;
  pending_text_ += text;
  std::string out = clean_up_tokenization(pending_text_);
  pending_text_.clear();
  return out;
}

}  // namespace tandem::tokenizer
