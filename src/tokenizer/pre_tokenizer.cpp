#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "tokenizer/json_fields.h"
#include "tokenizer/onig_pattern.h"

namespace tandem::tokenizer {
namespace {

// GPT-2's pre-tokenization regex, applied by ByteLevel when use_regex is true (HF byte_level.rs).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

SplitBehavior parse_behavior(const std::string& name, std::string_view where) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  fail("{}: unknown split behavior '{}'", where, name);
}

struct Span {
  size_t begin, end;
  bool flag;  // is_match before the behavior is applied; "remove" after
};

}  // namespace

PreTokenizer PreTokenizer::from_json(const nlohmann::json& spec, std::string_view where) {
  PreTokenizer p;
  if (!spec.is_null()) p.add(spec, where);
  return p;
}

void PreTokenizer::add(const nlohmann::json& spec, std::string_view where) {
  const std::string type = json_fields::get_string(spec, "type", where);
  if (byte_level_) {
    fail("{}: a '{}' pre-tokenizer after ByteLevel is not supported (ByteLevel must come last)", where, type);
  }
  if (type == "Sequence") {
    const nlohmann::json& list = json_fields::require(spec, "pretokenizers", where);
    const std::string list_where = json_fields::path(where, "pretokenizers");
    if (!list.is_array()) fail("{}: expected an array", list_where);
    for (size_t i = 0; i < list.size(); ++i) add(list[i], json_fields::path(list_where, i));
  } else if (type == "Split") {
    const nlohmann::json& pattern = json_fields::require(spec, "pattern", where);
    const std::string pattern_where = json_fields::path(where, "pattern");
    std::string pcre2;
    if (pattern.contains("Regex")) {
      const std::string onig = json_fields::get_string(pattern, "Regex", pattern_where);
      pcre2 = onig_to_pcre2(onig, json_fields::path(pattern_where, "Regex"));
    } else if (pattern.contains("String")) {
      pcre2 = pcre2_literal(json_fields::get_string(pattern, "String", pattern_where));
    } else {
      fail("{}: expected {{\"Regex\": ...}} or {{\"String\": ...}}, got {}", pattern_where, pattern.dump());
    }
    splits_.push_back(Split{
        .regex = Regex(pcre2, pattern_where),
        .behavior = parse_behavior(json_fields::get_string(spec, "behavior", where),
                                   json_fields::path(where, "behavior")),
        .invert = json_fields::get_bool(spec, "invert", where, false),
    });
  } else if (type == "ByteLevel") {
    ByteLevelStep step{.add_prefix_space = json_fields::get_bool(spec, "add_prefix_space", where, true),
                       .gpt2_regex = std::nullopt};
    // trim_offsets only moves offsets, which tandem does not report.
    if (json_fields::get_bool(spec, "use_regex", where, true)) {
      step.gpt2_regex.emplace(onig_to_pcre2(kGpt2Pattern, "ByteLevel GPT-2 regex"), "ByteLevel GPT-2 regex");
    }
    byte_level_ = std::move(step);
  } else {
    fail("{}: pre-tokenizer type '{}' is not supported (supported: Sequence, Split, ByteLevel)", where, type);
  }
}

void PreTokenizer::split(const Regex& regex, SplitBehavior behavior, bool invert, std::string_view text,
                         std::vector<std::string>& out) {
  // Pattern::find_matches: the matches and the gaps between them, covering all of `text`.
  thread_local std::vector<std::pair<size_t, size_t>> matches;
  thread_local std::vector<Span> spans;
  matches.clear();
  spans.clear();
  regex.find_all(text, matches);
  size_t prev = 0;
  for (const auto& [s, e] : matches) {
    if (prev != s) spans.push_back({prev, s, false});
    spans.push_back({s, e, true});
    prev = e;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), false});
  if (invert) {
    for (Span& sp : spans) sp.flag = !sp.flag;
  }

  // NormalizedString::split: fold the spans according to the behavior; `flag` becomes "remove".
  thread_local std::vector<Span> folded;
  folded.clear();
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Span& sp : spans) folded.push_back({sp.begin, sp.end, false});
      break;
    case SplitBehavior::kRemoved:
      folded = spans;
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Span& sp : spans) {
        if (sp.flag == previous_match && !folded.empty()) {
          folded.back().end = sp.end;
        } else {
          folded.push_back({sp.begin, sp.end, false});
        }
        previous_match = sp.flag;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& sp : spans) {
        if (sp.flag && !previous_match && !folded.empty()) {
          folded.back().end = sp.end;
        } else {
          folded.push_back({sp.begin, sp.end, false});
        }
        previous_match = sp.flag;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->flag && !previous_match && !folded.empty()) {
          folded.back().begin = it->begin;
        } else {
          folded.push_back({it->begin, it->end, false});
        }
        previous_match = it->flag;
      }
      std::reverse(folded.begin(), folded.end());
      break;
    }
  }
  for (const Span& sp : folded) {
    if (!sp.flag && sp.end > sp.begin) out.emplace_back(text.substr(sp.begin, sp.end - sp.begin));
  }
}

void PreTokenizer::pre_tokenize(std::string_view segment, std::vector<std::string>& pieces) const {
  if (segment.empty()) return;
  const size_t first = pieces.size();
  pieces.emplace_back(segment);
  thread_local std::vector<std::string> next;
  for (const Split& step : splits_) {
    next.clear();
    for (size_t i = first; i < pieces.size(); ++i) split(step.regex, step.behavior, step.invert, pieces[i], next);
    pieces.resize(first);
    for (std::string& p : next) pieces.push_back(std::move(p));
  }
  if (!byte_level_) return;
  if (!byte_level_->add_prefix_space && !byte_level_->gpt2_regex) return;
  next.clear();
  for (size_t i = first; i < pieces.size(); ++i) {
    std::string& p = pieces[i];
    if (byte_level_->add_prefix_space && p[0] != ' ') p.insert(p.begin(), ' ');
    if (byte_level_->gpt2_regex) {
      split(*byte_level_->gpt2_regex, SplitBehavior::kIsolated, /*invert=*/false, p, next);
    } else {
      next.push_back(std::move(p));
    }
  }
  pieces.resize(first);
  for (std::string& p : next) pieces.push_back(std::move(p));
}

}  // namespace tandem::tokenizer
