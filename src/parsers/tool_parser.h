// Tool-call parsers: one incremental state machine per output format, fed the assistant's content text (after
// the reasoning parser took out <think>...</think>) in deltas of any size.
//
// Formats (the parser names accepted by make_tool_parser):
//   glm45        GLM-4.5/4.6  <tool_call>NAME\n<arg_key>K</arg_key>\n<arg_value>V</arg_value>\n...</tool_call>
//   glm47        GLM-4.7      <tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>, and
//                             <tool_call>NAME</tool_call> without arguments. Both GLM names run the same parser,
//                             which accepts either shape (a name ends at a newline, <arg_key> or </tool_call>).
//   hermes       Qwen3/Hermes <tool_call>\n{"name": NAME, "arguments": {...}}\n</tool_call>
//   qwen3_coder  Qwen3-Coder, Qwen3.5
//                             <tool_call>\n<function=NAME>\n<parameter=K>\nV\n</parameter>\n</function>\n</tool_call>
//   deepseekv3   DeepSeek-V3  <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```
//                             <｜tool▁call▁end｜>...<｜tool▁calls▁end｜> (also V3.1's NAME<｜tool▁sep｜>{...})
//
// Contract of every parser:
//   - Chunking does not matter: any split of the same text into deltas gives the same events once coalesced,
//     and so the same message. Between deltas only a suffix that may still become a tag is held back (and
//     trailing content whitespace, which is dropped if a call follows; see below).
//   - Input is UTF-8 text. The server delivers whole characters per delta (its detokenizer holds back
//     incomplete sequences); the parsers work on bytes and stay correct for any split, but would then pass a
//     split character on in two events.
//   - A call starts (kToolCallBegin) only once its name is complete and valid (no whitespace or <>"'{}[]()=,;`,
//     at most 256 bytes). Until then nothing of the call is emitted; text that turns out not to be a call
//     (e.g. "<tool_call>" written in prose, a GLM "name" with spaces) is passed on as content.
//   - Arguments are emitted as compact JSON fragments whose concatenation is one JSON object, even when the
//     output stops inside the call. Values that are strings are streamed as they arrive; typed values of the
//     plain-text formats (GLM, Qwen3-Coder) and JSON numbers/literals are emitted once complete.
//   - Content whitespace that only separates text from tool calls is dropped: leading whitespace of the
//     content, whitespace right before a call, and whitespace after the last call or at the end. Whitespace
//     between a call and following text is kept.
//   - Garbage inside a call that the format does not allow is skipped up to the next tag the format expects.
//     Invalid JSON arguments (hermes, deepseekv3) keep their valid prefix, closed, and the rest of the call is
//     dropped; hermes arguments that are not an object become {} (a JSON string holding an object is unwrapped).
//
// At finish() (end of generation, including max_tokens) an unterminated call is closed: a call whose name was
// complete is reported with the arguments read so far (an open string value is closed as is, a typed value
// cut off is typed if it is already valid else kept as a string, a key without value is dropped, open JSON
// strings/arrays/objects are closed); a call whose name was not complete is passed on as content text. The
// same happens in a non-streamed parse, which is a single push() of the whole text followed by finish().
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/parse_event.h"
#include "parsers/tool_schema.h"

namespace tandem::parsers {

struct ToolParserOptions {
  ToolSchemas schemas;       // argument types, for glm45/glm47/qwen3_coder
  std::string call_id_seed;  // tool_call_id(call_id_seed, index) names the calls
};

class ToolParser {
 public:
  virtual ~ToolParser() = default;

  /// Feeds the next piece of content text; returns the events it completes.
  [[nodiscard]] virtual std::vector<ParseEvent> push(std::string_view delta) = 0;
  /// End of the output: returns the remaining events (see the header comment for cut-off calls). No push()
  /// after finish().
  [[nodiscard]] virtual std::vector<ParseEvent> finish() = 0;

  /// The tags with which a call (or a block of calls) starts. The reasoning parser ends reasoning at them:
  /// GLM-4.7 sometimes starts a call without closing </think>.
  virtual std::vector<std::string> start_tags() const = 0;
  /// Every tag of the format (start tags included). They must reach the parser in the text: a tokenizer that
  /// marks one of them special must decode the output without skipping special tokens.
  virtual std::vector<std::string> tags() const = 0;
};

/// Longest function name accepted; a "name" that runs on longer is not a call.
inline constexpr size_t kMaxNameBytes = 256;
/// A name the parsers accept as a call's function name (see the contract above): the server refuses tools whose
/// name could never be parsed back.
bool valid_function_name(std::string_view name);

/// Throws tandem::Error for a name not in tool_parser_names().
std::unique_ptr<ToolParser> make_tool_parser(std::string_view name, ToolParserOptions options);
const std::vector<std::string>& tool_parser_names();

}  // namespace tandem::parsers
