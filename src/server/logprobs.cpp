#include "server/logprobs.h"

namespace tandem::server {

std::string token_text(const tokenizer::Tokenizer& tok, int32_t id) {
  return tok.decode(std::vector<int32_t>{id}, /*skip_special_tokens=*/false);
}

nlohmann::json completion_logprobs(const tokenizer::Tokenizer& tok, std::span<const engine::TokenLogprob> lps,
                                   size_t& offset) {
  nlohmann::json tokens = nlohmann::json::array(), token_lps = nlohmann::json::array(),
                 tops = nlohmann::json::array(), offsets = nlohmann::json::array();
  for (const auto& e : lps) {
    const std::string t = token_text(tok, e.id);
    tokens.push_back(t);
    token_lps.push_back(e.logprob);
    nlohmann::json top = nlohmann::json::object();
    // Several ids can share a text (e.g. U+FFFD for partial UTF-8); a dict keeps one, so keep the likeliest.
    for (const auto& [id, lp] : e.top) {
      const std::string k = token_text(tok, id);
      if (!top.contains(k)) top[k] = lp;
    }
    // vLLM lists the chosen token among the alternatives even when it is outside the top k.
    if (!e.top.empty() && !top.contains(t)) top[t] = e.logprob;
    tops.push_back(e.top.empty() ? nlohmann::json(nullptr) : top);
    offsets.push_back(offset);
    offset += t.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

namespace {

nlohmann::json bytes_of(const tokenizer::Tokenizer& tok, int32_t id) {
  const std::string s = tok.token_bytes(id);
  nlohmann::json b = nlohmann::json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

nlohmann::json chat_logprobs(const tokenizer::Tokenizer& tok, std::span<const engine::TokenLogprob> lps) {
  nlohmann::json content = nlohmann::json::array();
  for (const auto& e : lps) {
    const std::string t = token_text(tok, e.id);
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [id, lp] : e.top) {
      top.push_back({{"token", token_text(tok, id)}, {"logprob", lp}, {"bytes", bytes_of(tok, id)}});
    }
    content.push_back({{"token", t}, {"logprob", e.logprob}, {"bytes", bytes_of(tok, e.id)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

nlohmann::json native_token_logprobs(const tokenizer::Tokenizer& tok, std::span<const engine::TokenLogprob> lps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : lps) out.push_back({e.logprob, e.id, token_text(tok, e.id)});
  return out;
}

nlohmann::json native_top_logprobs(const tokenizer::Tokenizer& tok, std::span<const engine::TokenLogprob> lps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : lps) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [id, lp] : e.top) top.push_back({lp, id, token_text(tok, id)});
    out.push_back(top);
  }
  return out;
}

}  // namespace tandem::server
