// Turning --prompt / --prompt-ids / --chat into token ids with the checkpoint's own tokenizer and template.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/loaded_model.h"
#include "tokenizer/tokenizer.h"

namespace tandem::app {

struct PromptInput {
  std::string text;  // --prompt
  std::string ids;   // --prompt-ids "1,2,3"
  std::string chat;  // --chat '[{"role": "user", "content": "..."}]'
};

struct Prompt {
  std::vector<int32_t> ids;
  std::shared_ptr<tokenizer::Tokenizer> tokenizer;  // null when the checkpoint has no tokenizer.json
};

/// Exactly one of the inputs must be set. Text and chat need tokenizer.json in the model folder.
Prompt build_prompt(const models::LoadedModel& model, const PromptInput& in);

/// Parses "1, 2,3" into ids; throws naming the bad element.
std::vector<int32_t> parse_id_list(const std::string& s);

}  // namespace tandem::app
