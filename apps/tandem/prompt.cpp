#include "prompt.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>

#include "core/json_text.h"
#include "tokenizer/chat.h"

namespace tandem::app {

std::vector<int32_t> parse_id_list(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos) fail("--prompt-ids: empty element in '{}'", s);
    const std::string t = item.substr(b, e - b + 1);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != t.size() || v < 0 || v > INT32_MAX) fail("--prompt-ids: '{}' is not a token id", t);
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) fail("--prompt-ids is empty");
  return ids;
}

Prompt build_prompt(const models::LoadedModel& model, const PromptInput& in) {
  Prompt p;
  const auto dir = model.checkpoint->dir();
  if (std::filesystem::exists(dir / "tokenizer.json")) p.tokenizer = tokenizer::Tokenizer::from_dir(dir);
  const int given = !in.text.empty() + !in.ids.empty() + !in.chat.empty();
  if (given != 1) fail("give exactly one of --prompt, --prompt-ids, --chat");
  if (!in.ids.empty()) {
    p.ids = parse_id_list(in.ids);
    return p;
  }
  if (!p.tokenizer) fail("{} has no tokenizer.json: use --prompt-ids", dir.string());
  if (!in.text.empty()) {
    p.ids = p.tokenizer->encode(in.text, /*add_special_tokens=*/true);
    return p;
  }
  const auto messages = parse_json_text<nlohmann::ordered_json>(in.chat, "--chat");
  const std::string rendered = tokenizer::apply_chat_template(*p.tokenizer, messages, nlohmann::ordered_json(),
                                                              /*add_generation_prompt=*/true, {});
  p.ids = p.tokenizer->encode(rendered, /*add_special_tokens=*/false);
  return p;
}

}  // namespace tandem::app
