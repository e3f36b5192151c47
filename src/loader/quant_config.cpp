#include "loader/quant_config.h"

#include <algorithm>
#include <cctype>
#include <tuple>

// libstdc++ 12's <regex> trips -Wmaybe-uninitialized inside its own NFA code under some optimisation and
// sanitizer flags (a GCC false positive); silence it for the header only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop

#include "core/error.h"

namespace tandem::loader {

namespace {

using nlohmann::json;

constexpr const char* kRoot = "quantization_config";

std::string brief(const json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

const json* member(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string get_string(const json& obj, const char* key, const std::string& where) {
  const json* v = member(obj, key);
  if (v == nullptr) fail("{}.{} is missing", where, key);
  if (!v->is_string()) fail("{}.{} must be a string, got {}", where, key, brief(*v));
  return v->get<std::string>();
}

int64_t get_positive_int(const json& v, const std::string& field) {
  if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (1 << 20))
    fail("{} must be a positive integer, got {}", field, brief(v));
  return v.get<int64_t>();
}

std::pair<int, int> get_block(const json& obj, const char* key, const std::string& where) {
  const json* v = member(obj, key);
  const std::string field = where + "." + key;
  if (v == nullptr) fail("{} is missing (needed for block-scaled FP8)", field);
  if (!v->is_array() || v->size() != 2) fail("{} must be [block_out, block_in], got {}", field, brief(*v));
  return {static_cast<int>(get_positive_int((*v)[0], field)),
          static_cast<int>(get_positive_int((*v)[1], field))};
}

std::regex compile_ignore(const std::string& entry) {
  try {
    return std::regex(entry.substr(3), std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    fail("{}.ignore entry '{}' is not a valid regular expression: {}", kRoot, entry, e.what());
  }
}

std::vector<std::string> get_string_list(const json& obj, const char* key, const std::string& where) {
  std::vector<std::string> out;
  const json* v = member(obj, key);
  if (v == nullptr) return out;
  if (!v->is_array()) fail("{}.{} must be a list of strings, got {}", where, key, brief(*v));
  for (const json& e : *v) {
    if (!e.is_string()) fail("{}.{} must hold strings, got {}", where, key, brief(e));
    out.push_back(e.get<std::string>());
  }
  return out;
}

// num_bits 8 and type float: the only numeric format tandem's kernels read.
void check_fp8_args(const json& args, const std::string& where) {
  const json* bits = member(args, "num_bits");
  if (bits == nullptr) fail("{}.num_bits is missing", where);
  if (!bits->is_number_integer() || bits->get<int64_t>() != 8)
    fail("{}.num_bits is {}; only 8-bit FP8 is supported", where, brief(*bits));
  const std::string type = get_string(args, "type", where);
  if (type != "float") fail("{}.type is '{}'; only float (FP8 e4m3) is supported", where, type);
  if (const json* sym = member(args, "symmetric")) {
    if (!sym->is_boolean()) fail("{}.symmetric must be true or false, got {}", where, brief(*sym));
    if (!sym->get<bool>())
      fail("{}.symmetric is false: asymmetric quantization (zero points) is not supported", where);
  }
}

struct GroupScheme {
  WeightStrategy strategy = WeightStrategy::kChannel;
  int block_out = 0, block_in = 0;
  std::string activation_scheme;

  bool operator==(const GroupScheme&) const = default;
  std::string str() const {
    std::string w = strategy == WeightStrategy::kTensor    ? "tensor"
                    : strategy == WeightStrategy::kChannel ? "channel"
                                                           : fmt::format("block {}x{}", block_out, block_in);
    return "weights " + w + ", activations " + activation_scheme;
  }
};

GroupScheme parse_group(const json& g, const std::string& where) {
  if (!g.is_object()) fail("{} must be an object, got {}", where, brief(g));
  const json* targets = member(g, "targets");
  if (targets == nullptr || !targets->is_array() || targets->empty())
    fail("{}.targets must be a non-empty list, got {}", where, targets ? brief(*targets) : "nothing");
  for (const json& t : *targets) {
    if (!t.is_string()) fail("{}.targets must hold strings, got {}", where, brief(t));
    const std::string s = t.get<std::string>();
    // Module class names other than Linear (Embedding, Conv2d, ...) would quantize layers tandem reads plain.
    if (!s.starts_with("re:") && s != "Linear" && s.find('.') == std::string::npos && !s.empty() &&
        std::isupper(static_cast<unsigned char>(s[0])))
      fail("{}.targets contains '{}'; only Linear modules can be quantized", where, s);
    if (s.starts_with("re:")) {
      try {
        std::regex re(s.substr(3), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        fail("{}.targets entry '{}' is not a valid regular expression: {}", where, s, e.what());
      }
    }
  }
  if (const json* f = member(g, "format")) {
    if (!f->is_string() || f->get<std::string>() != "float-quantized")
      fail("{}.format is {}; only float-quantized (FP8) is supported", where, brief(*f));
  }

  GroupScheme s;
  const json* w = member(g, "weights");
  const std::string ww = where + ".weights";
  if (w == nullptr) fail("{} is missing: activation-only quantization is not supported", ww);
  if (!w->is_object()) fail("{} must be an object, got {}", ww, brief(*w));
  check_fp8_args(*w, ww);
  if (const json* dyn = member(*w, "dynamic")) {
    if (!dyn->is_boolean() || dyn->get<bool>())
      fail("{}.dynamic is {}; weights must be stored quantized (dynamic false)", ww, brief(*dyn));
  }
  const std::string strategy = get_string(*w, "strategy", ww);
  if (strategy == "tensor") {
    s.strategy = WeightStrategy::kTensor;
  } else if (strategy == "channel") {
    s.strategy = WeightStrategy::kChannel;
  } else if (strategy == "block") {
    s.strategy = WeightStrategy::kBlock;
    std::tie(s.block_out, s.block_in) = get_block(*w, "block_structure", ww);
  } else {
    fail("{}.strategy is '{}'; supported: tensor, channel, block", ww, strategy);
  }

  const json* a = member(g, "input_activations");
  const std::string aw = where + ".input_activations";
  if (a == nullptr) {
    s.activation_scheme = "none";
  } else {
    if (!a->is_object()) fail("{} must be an object or null, got {}", aw, brief(*a));
    check_fp8_args(*a, aw);
    const json* dyn = member(*a, "dynamic");
    if (dyn == nullptr || !dyn->is_boolean())
      fail("{}.dynamic must be true or false, got {}", aw, dyn ? brief(*dyn) : "nothing");
    if (!dyn->get<bool>()) fail("{}.dynamic is false: static activation scales are not supported", aw);
    const std::string as = get_string(*a, "strategy", aw);
    if (as == "token") {
      s.activation_scheme = "dynamic per-token";
    } else if (as == "tensor") {
      s.activation_scheme = "dynamic per-tensor";
    } else if (as == "group") {
      const json* gs = member(*a, "group_size");
      if (gs == nullptr) fail("{}.group_size is missing (strategy group)", aw);
      s.activation_scheme = fmt::format("dynamic per-group {}", get_positive_int(*gs, aw + ".group_size"));
    } else {
      fail("{}.strategy is '{}'; supported: token, group, tensor", aw, as);
    }
  }
  if (const json* o = member(g, "output_activations"))
    fail("{}.output_activations is {}; output quantization is not supported", where, brief(*o));
  return s;
}

void parse_compressed_tensors(const json& q, QuantConfig& c) {
  c.method = QuantMethod::kCompressedTensors;
  const json* top_format = member(q, "format");
  if (top_format != nullptr &&
      (!top_format->is_string() || top_format->get<std::string>() != "float-quantized"))
    fail("{}.format is {}; only float-quantized (FP8) is supported", kRoot, brief(*top_format));
  if (const json* kv = member(q, "kv_cache_scheme"))
    fail("{}.kv_cache_scheme is {}; quantized KV caches are not supported", kRoot, brief(*kv));
  // Sparse (2:4 packed) storage and weight rotations change what the stored bytes mean.
  for (const char* key : {"sparsity_config", "transform_config"}) {
    const json* v = member(q, key);
    if (v != nullptr && !(v->is_object() && v->empty()))
      fail("{}.{} is {}; sparse or transformed compressed-tensors checkpoints are not supported", kRoot, key,
           brief(*v));
  }

  const json* groups = member(q, "config_groups");
  if (groups == nullptr || !groups->is_object() || groups->empty())
    fail("{}.config_groups must be a non-empty object, got {}", kRoot, groups ? brief(*groups) : "nothing");
  std::string first_name;
  GroupScheme first;
  for (const auto& [name, g] : groups->items()) {
    const std::string where = std::string(kRoot) + ".config_groups." + name;
    const GroupScheme s = parse_group(g, where);
    if (top_format == nullptr && member(g, "format") == nullptr)
      fail("{}.format is missing (and so is {}.format)", kRoot, where);
    if (first_name.empty()) {
      first_name = name;
      first = s;
    } else if (!(s == first)) {
      fail("{}.config_groups disagree: {} has {} but {} has {}; tandem needs one FP8 scheme per checkpoint",
           kRoot, first_name, first.str(), name, s.str());
    }
  }
  c.weight_strategy = first.strategy;
  c.block_out = first.block_out;
  c.block_in = first.block_in;
  c.activation_scheme = first.activation_scheme;
  c.ignore = get_string_list(q, "ignore", kRoot);
}

void parse_fp8(const json& q, QuantConfig& c) {
  c.method = QuantMethod::kFp8;
  if (const json* f = member(q, "fmt")) {
    if (!f->is_string() || f->get<std::string>() != "e4m3")
      fail("{}.fmt is {}; only e4m3 is supported", kRoot, brief(*f));
  }
  const std::string scheme = get_string(q, "activation_scheme", kRoot);
  if (scheme == "static")
    fail("{}.activation_scheme is 'static': static activation scales are not supported", kRoot);
  if (scheme != "dynamic") fail("{}.activation_scheme is '{}'; only dynamic is supported", kRoot, scheme);
  c.weight_strategy = WeightStrategy::kBlock;
  std::tie(c.block_out, c.block_in) = get_block(q, "weight_block_size", kRoot);
  // DeepSeek's act_quant scales activations per token in groups of the weight block width.
  c.activation_scheme = fmt::format("dynamic per-group {}", c.block_in);
  c.ignore = get_string_list(q, "ignored_layers", kRoot);
  for (auto& s : get_string_list(q, "modules_to_not_convert", kRoot)) c.ignore.push_back(std::move(s));
}

bool matches(const QuantConfig& c, const std::string& entry, const std::regex* re, std::string_view name) {
  if (entry.starts_with("re:")) {
    return std::regex_search(name.begin(), name.end(), *re, std::regex_constants::match_continuous);
  }
  if (c.method == QuantMethod::kFp8) return name.find(entry) != std::string_view::npos;
  return name == entry;
}

}  // namespace

struct QuantConfig::IgnoreMatcher {
  explicit IgnoreMatcher(const std::vector<std::string>& entries) : source(entries) {
    for (const auto& e : entries)
      if (e.starts_with("re:")) regex.push_back(compile_ignore(e));
  }
  std::vector<std::string> source;
  std::vector<std::regex> regex;  // one per "re:" entry of `source`, in order
};

QuantConfig QuantConfig::from_hf(const nlohmann::json& config) {
  QuantConfig c;
  if (!config.is_object()) fail("config.json is not a JSON object");
  const json* q = member(config, kRoot);
  if (q == nullptr) return c;
  if (!q->is_object()) fail("{} must be an object, got {}", kRoot, brief(*q));
  c.raw = *q;
  const std::string method = get_string(*q, "quant_method", kRoot);
  if (method == "compressed-tensors") {
    parse_compressed_tensors(*q, c);
  } else if (method == "fp8") {
    parse_fp8(*q, c);
  } else {
    fail(
        "{}.quant_method '{}' is not supported (tandem runs FP8 checkpoints: compressed-tensors "
        "float-quantized, or fp8)",
        kRoot, method);
  }
  c.matcher_ = std::make_shared<const IgnoreMatcher>(c.ignore);
  return c;
}

bool QuantConfig::is_ignored(std::string_view module_name) const {
  std::shared_ptr<const IgnoreMatcher> fresh;
  const IgnoreMatcher* m = matcher_.get();
  if (m == nullptr || m->source != ignore) {  // default-constructed, or `ignore` edited after from_hf
    fresh = std::make_shared<const IgnoreMatcher>(ignore);
    m = fresh.get();
  }
  size_t r = 0;
  for (const auto& e : ignore) {
    const std::regex* re = e.starts_with("re:") ? &m->regex[r++] : nullptr;
    if (matches(*this, e, re, module_name)) return true;
  }
  return false;
}

bool QuantConfig::quantizes(std::string_view module) const {
  if (method == QuantMethod::kNone) return false;
  const size_t dot = module.rfind('.');
  const std::string_view leaf = dot == std::string_view::npos ? module : module.substr(dot + 1);
  static constexpr std::string_view kProjections[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                      "gate_proj", "up_proj", "down_proj"};
  return std::find(std::begin(kProjections), std::end(kProjections), leaf) != std::end(kProjections) &&
         !is_ignored(module);
}

nlohmann::json QuantConfig::to_hf() const {
  if (method == QuantMethod::kNone) return nullptr;
  if (method == QuantMethod::kFp8) {
    TANDEM_CHECK(weight_strategy == WeightStrategy::kBlock, "quant_method fp8 is always block-scaled");
    json q = {{"quant_method", "fp8"},
              {"fmt", "e4m3"},
              {"activation_scheme", "dynamic"},
              {"weight_block_size", {block_out, block_in}}};
    if (!ignore.empty()) q["modules_to_not_convert"] = ignore;
    return q;
  }
  json weights = {{"num_bits", 8}, {"type", "float"}, {"symmetric", true}, {"dynamic", false}};
  switch (weight_strategy) {
    case WeightStrategy::kTensor:
      weights["strategy"] = "tensor";
      break;
    case WeightStrategy::kChannel:
      weights["strategy"] = "channel";
      break;
    case WeightStrategy::kBlock:
      weights["strategy"] = "block";
      weights["block_structure"] = {block_out, block_in};
      break;
  }
  json act = {{"num_bits", 8}, {"type", "float"}, {"symmetric", true}, {"dynamic", true}};
  constexpr std::string_view kGroup = "dynamic per-group ";
  if (activation_scheme == "none") {
    act = nullptr;
  } else if (activation_scheme == "dynamic per-token") {
    act["strategy"] = "token";
  } else if (activation_scheme == "dynamic per-tensor") {
    act["strategy"] = "tensor";
  } else if (activation_scheme.starts_with(kGroup)) {
    act["strategy"] = "group";
    const std::string n = activation_scheme.substr(kGroup.size());
    TANDEM_CHECK(!n.empty() && n.find_first_not_of("0123456789") == std::string::npos,
                 "activation_scheme '{}' has no group size", activation_scheme);
    act["group_size"] = std::stoll(n);
  } else {
    fail("activation_scheme '{}' has no compressed-tensors spelling", activation_scheme);
  }
  return {{"quant_method", "compressed-tensors"},
          {"format", "float-quantized"},
          {"quantization_status", "compressed"},
          {"config_groups",
           {{"group_0",
             {{"targets", json::array({"Linear"})}, {"weights", weights}, {"input_activations", act}}}}},
          {"ignore", ignore}};
}

}  // namespace tandem::loader
