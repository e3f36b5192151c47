// The input side of every parser: the text received so far and not yet consumed, searched for tags. A tag that
// may still be arriving is never split: the longest suffix that could begin a tag is held back until the next
// delta (or the end of the output) decides it. Parsers are byte-oriented, so the tags' UTF-8 (DeepSeek's
// fullwidth bars) needs no special care.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace tandem::parsers {

/// A set of tags; call sites usually write a braced list ({"<a>", "</a>"}), which converts via TagList.
using Tags = std::span<const std::string_view>;
using TagList = std::initializer_list<std::string_view>;
inline Tags tags_of(TagList list) { return Tags(list.begin(), list.size()); }

/// The earliest complete occurrence of any of `tags` in `text` (the longest tag when several start at the same
/// byte): its position and the tag's index in `tags`. `npos`/-1 when none occurs.
struct TagMatch {
  size_t at = std::string_view::npos;
  int tag = -1;
};
TagMatch find_tag(std::string_view text, Tags tags);
inline TagMatch find_tag(std::string_view text, TagList tags) { return find_tag(text, tags_of(tags)); }

/// Length of the longest suffix of `text` that is a proper prefix of one of `tags` (0 if none).
size_t partial_tag_suffix(std::string_view text, Tags tags);
inline size_t partial_tag_suffix(std::string_view text, TagList tags) { return partial_tag_suffix(text, tags_of(tags)); }

inline bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
std::string_view trim(std::string_view s);

class TextScanner {
 public:
  /// What take_until does at the end of the output with a held-back suffix that never became a tag.
  enum class AtEof { kRelease, kDrop };

  void push(std::string_view delta) { buf_.append(delta); }
  void set_eof() { eof_ = true; }
  bool eof() const { return eof_; }

  /// Unconsumed input.
  std::string_view rest() const { return std::string_view(buf_).substr(pos_); }
  void advance(size_t n) { pos_ += n; }

  /// Consumes the text before the earliest of `tags` and that tag; returns the text and the tag's index. With
  /// no tag in the input, consumes and returns everything but a held-back suffix that could begin a tag
  /// (tag = -1); at the end of the output that suffix is consumed too, and returned with kRelease.
  /// Precondition: no tag in `tags` is a prefix of another.
  struct Taken {
    std::string_view text;  // valid until the next push() or compact()
    int tag = -1;
  };
  Taken take_until(Tags tags, AtEof at_eof = AtEof::kRelease);
  Taken take_until(TagList tags, AtEof at_eof = AtEof::kRelease) { return take_until(tags_of(tags), at_eof); }

  enum class Match { kNo, kPartial, kYes };
  /// Consumes `tag` if the input starts with it (kYes). kPartial: the input is a proper prefix of the tag and
  /// more may come; kNo otherwise (also for an input that is a proper prefix at the end of the output).
  Match accept(std::string_view tag);

  /// Consumes whitespace; returns whether a non-whitespace byte follows.
  bool skip_space();

  /// Remembers the current position so that the parser can return to it (rewind) while it decides whether a
  /// tag really starts a tool call. Input from the mark on is kept until unmark().
  size_t position() const { return base_ + pos_; }
  void mark() { mark_ = position(); }
  void unmark() { mark_ = kNoMark; }
  /// Text from the mark to the current position. Precondition: marked.
  std::string_view marked_text() const { return std::string_view(buf_).substr(mark_ - base_, pos_ - (mark_ - base_)); }
  /// Moves back to `position` (>= the mark) and unmarks.
  void rewind(size_t position);

  /// Frees consumed input (call between deltas).
  void compact();

 private:
  static constexpr size_t kNoMark = static_cast<size_t>(-1);
  std::string buf_;
  size_t pos_ = 0;   // into buf_
  size_t base_ = 0;  // absolute position of buf_[0]
  size_t mark_ = kNoMark;
  bool eof_ = false;
};

}  // namespace tandem::parsers
