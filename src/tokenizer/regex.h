// A compiled PCRE2 regex (UTF + UCP, JIT when available) with the match iteration Hugging Face `tokenizers`
// uses for Split and ByteLevel pre-tokenization. Immutable after construction; safe to share between threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::tokenizer {

class Regex {
 public:
  /// Compiles a PCRE2 pattern; throws tandem::Error with PCRE2's message and offset, naming `where`.
  Regex(const std::string& pcre2_pattern, std::string_view where);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  /// Appends to `out` the [start, end) byte ranges of the matches in `text` (valid UTF-8), found like the Rust
  /// onig crate's find_iter: each search starts where the previous match ended; an empty match ending where the
  /// previous match ended is skipped by moving the search start one character on.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  /// Whether the pattern matches somewhere in `text` (valid UTF-8).
  bool search(std::string_view text) const;

 private:
  // Returns false on no match; throws on a PCRE2 error (e.g. resource limits).
  bool match_at(std::string_view text, size_t start, size_t& match_start, size_t& match_end) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::tokenizer
