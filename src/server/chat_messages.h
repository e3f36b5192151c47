// The `messages` of a chat request as the chat template sees them: validated (every mistake a 400 naming the
// message and field), in the client's key order, with
//   - content parts flattened to their text (text parts only);
//   - assistant `tool_calls` checked ({"id", "type": "function", "function": {"name", "arguments"}}) and
//   their
//     `arguments` given to the template as an object, as transformers' templates expect, whether the client
//     sent the JSON text (OpenAI's shape) or the object; the object keeps the key order of the text;
//   - assistant `reasoning_content` (a string) passed on, for templates that render past reasoning;
//   - `tool` messages required to answer a call: their `tool_call_id` must be the id of a tool call of an
//     earlier assistant message.
#pragma once

#include <nlohmann/json.hpp>

namespace tandem::server {

nlohmann::ordered_json template_messages(const nlohmann::ordered_json& messages);

}  // namespace tandem::server
