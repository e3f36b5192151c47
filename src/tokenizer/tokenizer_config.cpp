// Model folder -> Tokenizer: tokenizer.json plus what transformers reads from tokenizer_config.json.
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_text.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_components.h"

namespace tandem::tokenizer {
namespace {

namespace jf = json_fields;

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail("{}: cannot open", p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// bos_token / eos_token are either a string or a serialized AddedToken {"__type": "AddedToken", "content": ...}.
std::optional<std::string> token_string(const nlohmann::json& config, std::string_view key, std::string_view where) {
  const nlohmann::json* v = jf::find(config, key);
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) return jf::get_string(*v, "content", jf::path(where, key));
  fail("{}: expected a string, an AddedToken object or null, got {}", jf::path(where, key), v->type_name());
}

// chat_template is a string, or a list of {"name", "template"} of which transformers uses "default".
std::string config_chat_template(const nlohmann::json& config, std::string_view where) {
  const nlohmann::json* v = jf::find(config, "chat_template");
  if (!v) return {};
  if (v->is_string()) return v->get<std::string>();
  const std::string w = jf::path(where, "chat_template");
  if (v->is_array()) {
    for (size_t i = 0; i < v->size(); ++i) {
      if (jf::get_string((*v)[i], "name", jf::path(w, i)) == "default") {
        return jf::get_string((*v)[i], "template", jf::path(w, i));
      }
    }
    fail("{}: no template named \"default\"", w);
  }
  fail("{}: expected a string or a list of named templates, got {}", w, v->type_name());
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_dir(const std::filesystem::path& dir) {
  std::unique_ptr<Tokenizer> tok = from_file(dir / "tokenizer.json");
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  nlohmann::json config = nlohmann::json::object();
  const std::string where = config_path.string();
  if (std::filesystem::exists(config_path)) {
    config = parse_json_text<nlohmann::json>(read_text(config_path), where);
    if (!config.is_object()) fail("{}: expected a JSON object", where);
  }

  // transformers (PreTrainedTokenizerFast.__init__) adds added_tokens_decoder entries whose id the tokenizer does
  // not have yet; entries it already has keep tokenizer.json's flags.
  if (const nlohmann::json* decoder = jf::find(config, "added_tokens_decoder")) {
    const std::string dw = jf::path(where, "added_tokens_decoder");
    if (!decoder->is_object()) fail("{}: expected an object of id: token", dw);
    std::vector<AddedToken> tokens = tok->c_->added.tokens();
    std::vector<std::pair<int32_t, AddedToken>> extra;
    for (const auto& [key, t] : decoder->items()) {
      const std::string w = jf::path(dw, key);
      nlohmann::json key_value;
      try {
        key_value = parse_json_text<nlohmann::json>(key, w);
      } catch (const Error&) {
        fail("{}: the key is not a token id", w);
      }
      const int32_t id = jf::as_id(key_value, w);
      AddedToken added{.id = id,
                       .content = jf::get_string(t, "content", w),
                       .single_word = jf::get_bool(t, "single_word", w, false),
                       .lstrip = jf::get_bool(t, "lstrip", w, false),
                       .rstrip = jf::get_bool(t, "rstrip", w, false),
                       .normalized = jf::get_bool(t, "normalized", w, true),
                       .special = jf::get_bool(t, "special", w, false)};
      if (tok->has_token(id)) {
        // Compare with the spelling in tokenizer.json (id_to_token gives normalized tokens normalized).
        std::string existing = id < static_cast<int32_t>(tok->c_->model.tokens().size())
                                   ? tok->c_->model.tokens()[id]
                                   : std::string();
        for (const AddedToken& a : tokens) {
          if (a.id == id) existing = a.content;
        }
        if (existing != added.content) {
          fail("{}: id {} is {:?} here but {:?} in tokenizer.json", w, id, added.content, existing);
        }
        continue;
      }
      extra.emplace_back(id, std::move(added));
    }
    if (!extra.empty()) {
      std::sort(extra.begin(), extra.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (auto& [id, t] : extra) tokens.push_back(std::move(t));
      tok->c_->set_added_tokens(std::move(tokens), dw);
      tok->c_->index_tokens();
    }
  }

  const std::filesystem::path jinja = dir / "chat_template.jinja";
  tok->chat_template_ = std::filesystem::exists(jinja) ? read_text(jinja) : config_chat_template(config, where);
  tok->bos_token_ = token_string(config, "bos_token", where);
  tok->eos_token_ = token_string(config, "eos_token", where);
  tok->clean_up_tokenization_spaces_ = jf::get_bool(config, "clean_up_tokenization_spaces", where, false);

  // Where the folder is a model checkpoint, its embedding must cover every id this tokenizer produces.
  const std::filesystem::path model_config = dir / "config.json";
  if (std::filesystem::exists(model_config)) {
    const auto mc = parse_json_text<nlohmann::json>(read_text(model_config), model_config.string());
    if (const nlohmann::json* v = jf::find(mc, "vocab_size"); v && v->is_number_integer()) {
      const int64_t vocab =
          v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX ? INT64_MAX : v->get<int64_t>();
      check_model_vocabulary(*tok, vocab, model_config.string());
    }
  }
  return tok;
}

void check_model_vocabulary(const Tokenizer& tok, int64_t vocab_size, std::string_view where) {
  if (vocab_size < tok.vocab_size())
    fail(
        "{}: 'vocab_size' {} is smaller than the tokenizer's vocabulary ({} ids); ids from {} up would "
        "index past the model's embedding",
        where, vocab_size, tok.vocab_size(), vocab_size);
}

}  // namespace tandem::tokenizer
