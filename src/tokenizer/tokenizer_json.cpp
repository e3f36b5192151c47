// tokenizer.json -> Tokenizer: each section parsed by its component; decoder and post_processor checked here.
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/error.h"
#include "core/json_text.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_components.h"

namespace tandem::tokenizer {
namespace {

namespace jf = json_fields;

// decode() implements the ByteLevel decoder only (every target tokenizer uses it); other decoders would give
// different text, so they are refused.
void check_decoder(const nlohmann::json* spec, std::string_view where) {
  if (!spec) fail("{}: no decoder; tandem decodes byte-level BPE and needs decoder ByteLevel", where);
  const std::string type = jf::get_string(*spec, "type", where);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    const nlohmann::json& list = jf::require(*spec, "decoders", where);
    const std::string list_where = jf::path(where, "decoders");
    if (!list.is_array() || list.empty()) fail("{}: expected a non-empty array", list_where);
    for (size_t i = 0; i < list.size(); ++i) check_decoder(&list[i], jf::path(list_where, i));
    return;
  }
  fail("{}: decoder type '{}' is not supported (supported: ByteLevel, Sequence of ByteLevel)", where, type);
}

// TemplateProcessing's "single" template, the only part used when encoding one sequence.
void parse_template(const nlohmann::json& spec, std::string_view where, TokenizerComponents& c) {
  const nlohmann::json& single = jf::require(spec, "single", where);
  const std::string single_where = jf::path(where, "single");
  const nlohmann::json& specials = jf::require(spec, "special_tokens", where);
  if (!single.is_array()) fail("{}: expected an array", single_where);
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string item_where = jf::path(single_where, i);
    if (const nlohmann::json* seq = jf::find(single[i], "Sequence")) {
      const std::string id = jf::get_string(*seq, "id", jf::path(item_where, "Sequence"));
      if (id != "A" || seen_sequence) fail("{}: sequence {:?} in a single-sequence template", item_where, id);
      seen_sequence = true;
    } else if (const nlohmann::json* tok = jf::find(single[i], "SpecialToken")) {
      const std::string name = jf::get_string(*tok, "id", jf::path(item_where, "SpecialToken"));
      const std::string special_where = jf::path(jf::path(where, "special_tokens"), name);
      const nlohmann::json& entry = jf::require(specials, name, jf::path(where, "special_tokens"));
      const nlohmann::json& ids = jf::require(entry, "ids", special_where);
      if (!ids.is_array()) fail("{}.ids: expected an array", special_where);
      auto& target = seen_sequence ? c.suffix_ids : c.prefix_ids;
      for (size_t k = 0; k < ids.size(); ++k) target.push_back(jf::as_id(ids[k], jf::path(special_where + ".ids", k)));
    } else {
      fail("{}: expected {{\"Sequence\": ...}} or {{\"SpecialToken\": ...}}, got {}", item_where, single[i].dump());
    }
  }
  if (!seen_sequence) fail("{}: the template has no sequence A", single_where);
}

void parse_post_processor(const nlohmann::json* spec, std::string_view where, TokenizerComponents& c) {
  if (!spec) return;
  const std::string type = jf::get_string(*spec, "type", where);
  if (type == "ByteLevel") return;  // only trims offsets
  if (type == "TemplateProcessing") {
    if (!c.prefix_ids.empty() || !c.suffix_ids.empty()) fail("{}: more than one TemplateProcessing", where);
    parse_template(*spec, where, c);
    return;
  }
  if (type == "Sequence") {
    const nlohmann::json& list = jf::require(*spec, "processors", where);
    const std::string list_where = jf::path(where, "processors");
    if (!list.is_array()) fail("{}: expected an array", list_where);
    for (size_t i = 0; i < list.size(); ++i) parse_post_processor(&list[i], jf::path(list_where, i), c);
    return;
  }
  fail("{}: post_processor type '{}' is not supported (supported: ByteLevel, TemplateProcessing, Sequence)", where,
       type);
}

std::vector<AddedToken> parse_added_tokens(const nlohmann::json* list, std::string_view where) {
  std::vector<AddedToken> out;
  if (!list) return out;
  if (!list->is_array()) fail("{}: expected an array", where);
  for (size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& t = (*list)[i];
    const std::string w = jf::path(where, i);
    out.push_back(AddedToken{
        .id = jf::as_id(jf::require(t, "id", w), jf::path(w, "id")),
        .content = jf::get_string(t, "content", w),
        .single_word = jf::get_bool(t, "single_word", w, false),
        .lstrip = jf::get_bool(t, "lstrip", w, false),
        .rstrip = jf::get_bool(t, "rstrip", w, false),
        .normalized = jf::get_bool(t, "normalized", w, true),
        .special = jf::get_bool(t, "special", w, false),
    });
  }
  return out;
}

}  // namespace

void TokenizerComponents::set_added_tokens(std::vector<AddedToken> tokens, std::string_view where) {
  // HF rebuilds the ids when it loads the file (AddedVocabulary::add_tokens): an added token that is in the
  // vocabulary keeps its vocabulary id; a new one gets max(added ids) + 1, or the vocabulary size when every
  // added id so far lies inside the vocabulary. A file whose ids disagree would encode differently, so refuse it.
  const auto vocab_len = static_cast<int64_t>(model.entry_count());
  added_ids.clear();
  int64_t max_added = -1;
  std::vector<AddedToken> kept;
  for (size_t i = 0; i < tokens.size(); ++i) {
    AddedToken& t = tokens[i];
    if (t.content.empty()) continue;  // HF ignores empty added tokens
    if (added_ids.contains(t.content)) {
      fail("{}: added token {:?} appears twice", jf::path(where, i), t.content);
    }
    int64_t expected;
    if (const auto in_vocab = model.token_to_id(t.content)) {
      expected = *in_vocab;
    } else if (max_added >= 0) {
      expected = (max_added >= vocab_len || vocab_len == 0) ? max_added + 1 : vocab_len;
    } else {
      expected = vocab_len;
    }
    if (expected != t.id) {
      fail("{}: added token {:?} has id {} but Hugging Face tokenizers would assign it id {}", jf::path(where, i),
           t.content, t.id, expected);
    }
    added_ids.emplace(t.content, t.id);
    max_added = std::max<int64_t>(max_added, t.id);
    kept.push_back(std::move(t));
  }
  added = AddedVocabulary(std::move(kept), normalizer);
}

void TokenizerComponents::index_tokens() {
  const std::vector<std::string>& vocab = model.tokens();
  size_t n = vocab.size();
  for (const AddedToken& t : added.tokens()) n = std::max(n, static_cast<size_t>(t.id) + 1);
  strings.assign(n, std::string());
  bytes.assign(n, std::string());
  kinds.assign(n, TokenKind::kNone);
  std::unordered_map<std::string_view, bool> special_contents;
  for (const AddedToken& t : added.tokens()) {
    if (t.special) special_contents.emplace(t.content, true);
  }
  for (size_t id = 0; id < vocab.size(); ++id) {
    if (!vocab[id].empty()) {
      strings[id] = vocab[id];
      kinds[id] = TokenKind::kNormal;
    }
  }
  for (const AddedToken& t : added.tokens()) {
    // HF (AddedVocabulary::simple_id_to_token, normalized_cache) decodes a normalized added token from its
    // normalized form, so that the decoder inverts what encoding matched.
    strings[t.id] = t.normalized ? normalizer.normalize(t.content) : t.content;
    kinds[t.id] = TokenKind::kNormal;
  }
  for (size_t id = 0; id < n; ++id) {
    if (kinds[id] == TokenKind::kNone) continue;
    // HF decides "special" by the token string, so a vocabulary entry spelled like a special token is special too
    // (and a special token whose normalized form differs from its content is not).
    if (special_contents.contains(strings[id])) kinds[id] = TokenKind::kSpecial;
    bytes[id] = byte_level::decode(strings[id]).value_or(strings[id]);
  }
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(const nlohmann::json& j, std::string_view source) {
  if (!j.is_object()) fail("{}: expected a JSON object", source);
  const auto where = [&](std::string_view key) { return fmt::format("{}: {}", source, key); };
  if (const auto version = jf::get_optional_string(j, "version", source); version && *version != "1.0") {
    fail("{}: tokenizer.json version {:?} is not supported (expected \"1.0\")", source, *version);
  }
  Normalizer normalizer = Normalizer::from_json(j.value("normalizer", nlohmann::json()), where("normalizer"));
  PreTokenizer pre_tokenizer =
      PreTokenizer::from_json(j.value("pre_tokenizer", nlohmann::json()), where("pre_tokenizer"));
  BpeModel model = BpeModel::from_json(jf::require(j, "model", source), where("model"), pre_tokenizer.byte_level());
  auto c = std::make_unique<TokenizerComponents>(std::move(normalizer), std::move(pre_tokenizer), std::move(model));
  check_decoder(jf::find(j, "decoder"), where("decoder"));
  parse_post_processor(jf::find(j, "post_processor"), where("post_processor"), *c);
  // truncation and padding are per-call options in transformers, which resets them on every call; tandem never
  // truncates or pads, so the saved values are not applied.
  c->set_added_tokens(parse_added_tokens(jf::find(j, "added_tokens"), where("added_tokens")),
                      where("added_tokens"));
  c->index_tokens();
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(c)));
}

std::unique_ptr<Tokenizer> Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  std::ifstream in(tokenizer_json, std::ios::binary);
  if (!in) fail("{}: cannot open", tokenizer_json.string());
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) fail("{}: read error", tokenizer_json.string());
  return from_json(parse_json_text<nlohmann::json>(text, tokenizer_json.string()), tokenizer_json.string());
}

}  // namespace tandem::tokenizer
