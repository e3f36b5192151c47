// Tool call ids: deterministic, so that a replayed request (same seed) gets the same ids, and streamed and
// non-streamed responses agree.
#pragma once

#include <string>
#include <string_view>

namespace tandem::parsers {

/// "call_" + 24 lowercase hex digits, a hash of `seed` and `index`. The caller picks a seed unique to the
/// choice (e.g. the response id plus the choice index): calls of different choices must not share ids.
std::string tool_call_id(std::string_view seed, int index);

}  // namespace tandem::parsers
