// Streaming detokenization for one request: turns generated ids into text as they arrive, one token or a whole
// accepted speculative run at a time, such that the pieces always add up to the one-shot decode of all ids.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "tokenizer/tokenizer.h"

namespace tandem::tokenizer {

class IncrementalDetokenizer {
 public:
  /// `tok` must outlive this object.
  IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens);

  /// Feeds newly generated ids; returns the newly completed text. An incomplete UTF-8 sequence at the end is held
  /// back until later bytes complete it (or finish() replaces it by U+FFFD). With clean_up_tokenization_spaces the
  /// text is also held back until 3 non-space bytes follow the last space, since the cleanup of " 's" etc.
  /// depends on what follows the space.
  /// Invariant: for any chunking of ids, concat(push(chunk)...) + finish() == tok.decode(all ids, skip).
  std::string push(std::span<const int32_t> ids);

  /// End of stream: returns whatever is held back.
  std::string finish();

 private:
  const Tokenizer* tok_;
  bool skip_special_tokens_;
  std::string pending_bytes_;  // undecoded bytes: an incomplete UTF-8 sequence
  std::string pending_text_;   // decoded text not yet cleaned up (clean_up_tokenization_spaces only)
};

}  // namespace tandem::tokenizer
