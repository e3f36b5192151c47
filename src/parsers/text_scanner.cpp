#include "parsers/text_scanner.h"

#include "core/error.h"

namespace tandem::parsers {

TagMatch find_tag(std::string_view text, Tags tags) {
  TagMatch best;
  size_t best_len = 0;
  int i = 0;
  for (std::string_view tag : tags) {
    const size_t at = text.find(tag);
    if (at != std::string_view::npos && (at < best.at || (at == best.at && tag.size() > best_len))) {
      best = {.at = at, .tag = i};
      best_len = tag.size();
    }
    ++i;
  }
  return best;
}

size_t partial_tag_suffix(std::string_view text, Tags tags) {
  size_t best = 0;
  for (std::string_view tag : tags) {
    for (size_t len = std::min(tag.size() - 1, text.size()); len > best; --len) {
      if (text.substr(text.size() - len) == tag.substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

TextScanner::Taken TextScanner::take_until(Tags tags, AtEof at_eof) {
  const std::string_view r = rest();
  const TagMatch m = find_tag(r, tags);
  if (m.tag >= 0) {
    pos_ += m.at + tags[m.tag].size();
    return {r.substr(0, m.at), m.tag};
  }
  size_t text_len = r.size() - partial_tag_suffix(r, tags);
  if (eof_) {
    if (at_eof == AtEof::kRelease) text_len = r.size();
    pos_ += r.size();  // nothing more can complete a tag: the suffix is consumed either way
  } else {
    pos_ += text_len;
  }
  return {r.substr(0, text_len), -1};
}

TextScanner::Match TextScanner::accept(std::string_view tag) {
  const std::string_view r = rest();
  if (r.starts_with(tag)) {
    pos_ += tag.size();
    return Match::kYes;
  }
  if (!eof_ && r.size() < tag.size() && tag.starts_with(r)) return Match::kPartial;
  return Match::kNo;
}

bool TextScanner::skip_space() {
  while (pos_ < buf_.size() && is_space(buf_[pos_])) ++pos_;
  return pos_ < buf_.size();
}

void TextScanner::rewind(size_t position) {
  TANDEM_CHECK(mark_ != kNoMark && position >= mark_ && position <= base_ + pos_, "rewind to {} outside [{}, {}]",
               position, mark_, base_ + pos_);
  pos_ = position - base_;
  mark_ = kNoMark;
}

void TextScanner::compact() {
  const size_t keep_from = mark_ == kNoMark ? base_ + pos_ : std::min(mark_, base_ + pos_);
  const size_t drop = keep_from - base_;
  if (drop == 0) return;
  buf_.erase(0, drop);
  pos_ -= drop;
  base_ += drop;
}

}  // namespace tandem::parsers
