// `tandem tokenize --model DIR TEXT`: token ids and pieces with the checkpoint's own tokenizer.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "commands.h"
#include "tokenizer/tokenizer.h"

namespace tandem::app {

namespace {
struct TokenizeFlags {
  std::string model = "models/tandem-tiny";
  std::string text;
  bool add_special_tokens = false;
  bool json = false;
};

int run_tokenize(const TokenizeFlags& f) {
  const auto tok = tokenizer::Tokenizer::from_dir(f.model);
  const auto ids = tok->encode(f.text, f.add_special_tokens);
  if (f.json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(tok->id_to_token(id));
    std::cout << nlohmann::json{{"ids", ids}, {"pieces", pieces}}.dump() << "\n";
    return 0;
  }
  for (int32_t id : ids) std::cout << fmt::format("{:>8}  {}\n", id, nlohmann::json(tok->id_to_token(id)).dump());
  std::cout << fmt::format("{} tokens\n", ids.size());
  return 0;
}
}  // namespace

Run add_tokenize(CLI::App& app) {
  auto f = std::make_shared<TokenizeFlags>();
  CLI::App* cmd = app.add_subcommand("tokenize", "print token ids and pieces");
  cmd->add_option("--model", f->model, "model folder with tokenizer.json")->capture_default_str();
  cmd->add_option("text", f->text, "text to tokenize")->required();
  cmd->add_flag("--add-special-tokens", f->add_special_tokens, "apply the tokenizer's post-processor");
  cmd->add_flag("--json", f->json, "print JSON");
  return [f] { return run_tokenize(*f); };
}

}  // namespace tandem::app
