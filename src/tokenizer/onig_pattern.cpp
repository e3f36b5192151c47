#include "tokenizer/onig_pattern.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <optional>

#include "core/error.h"
#include "tokenizer/unicode_tables.h"

namespace tandem::tokenizer {
namespace {

using unicode::GeneralCategory;

// Oniguruma's \s: the White_Space property (PropList.txt), stable since Unicode 6.3.
constexpr std::string_view kWhiteSpace =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

constexpr std::array<std::string_view, 22> kCategoryNames = {
    "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
    "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"};

std::string_view category_name(GeneralCategory gc) { return kCategoryNames[static_cast<size_t>(gc)]; }

// Canonical short name of a general-category property, or nullopt if `name` is not one we translate.
std::optional<std::string> category_property(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kLong = {
      {{"Letter", "L"}, {"Mark", "M"}, {"Number", "N"}, {"Punctuation", "P"}, {"Symbol", "S"}, {"Separator", "Z"}}};
  for (const auto& [long_name, short_name] : kLong) {
    if (name == long_name) return std::string(short_name);
  }
  if (name == "L" || name == "M" || name == "N" || name == "P" || name == "S" || name == "Z" || name == "Zs" ||
      name == "Zl" || name == "Zp") {
    return std::string(name);
  }
  for (auto n : kCategoryNames) {
    if (name == n) return std::string(name);
  }
  return std::nullopt;
}

// The class body (no brackets) of the code points PCRE2 lacks for property `prop` ("L", "Nd", ...).
std::string assigned_after_pcre2(std::string_view prop) {
  std::string out;
  for (const auto& r : unicode::assigned_after_pcre2()) {
    const std::string_view gc = category_name(r.gc);
    if (gc == prop || (prop.size() == 1 && gc[0] == prop[0])) {
      out += r.first == r.last ? fmt::format("\\x{{{:X}}}", static_cast<uint32_t>(r.first))
                               : fmt::format("\\x{{{:X}}}-\\x{{{:X}}}", static_cast<uint32_t>(r.first),
                                             static_cast<uint32_t>(r.last));
    }
  }
  return out;
}

class Translator {
 public:
  Translator(std::string_view pattern, std::string_view where) : p_(pattern), where_(where) {}

  std::string run() {
    while (i_ < p_.size()) {
      const char c = p_[i_];
      if (c == '\\') {
        escape();
      } else if (in_class_) {
        class_char();
      } else {
        outside_char();
      }
    }
    if (in_class_) reject("an unterminated character class");
    return out_;
  }

 private:
  [[noreturn]] void reject(std::string_view what) const {
    fail("{}: regex {:?}: {} (at byte {}) is not supported", where_, std::string(p_), what, i_);
  }

  // Emits a set: inside a class its body is spliced in; outside, it becomes its own class.
  void set(std::string_view body, bool negated) {
    if (in_class_) {
      if (negated) reject("a negated set (\\S, \\W, \\D, \\H, \\P) inside a character class");
      out_ += body;
    } else {
      out_ += negated ? "[^" : "[";
      out_ += body;
      out_ += ']';
    }
  }

  void property(bool negated) {
    // \pL or \p{Name} or \p{^Name}
    std::string name;
    if (i_ < p_.size() && p_[i_] == '{') {
      const size_t close = p_.find('}', i_);
      if (close == std::string_view::npos) reject("an unterminated \\p{");
      name = std::string(p_.substr(i_ + 1, close - i_ - 1));
      i_ = close + 1;
    } else if (i_ < p_.size()) {
      name = std::string(1, p_[i_++]);
    }
    if (!name.empty() && name[0] == '^') {
      negated = !negated;
      name.erase(0, 1);
    }
    const auto prop = category_property(name);
    if (!prop) reject(fmt::format("property \\p{{{}}} (only general categories are translated)", name));
    const std::string extra = assigned_after_pcre2(*prop);
    const std::string base = fmt::format("\\p{{{}}}", *prop);
    if (extra.empty() && !negated) {
      out_ += base;
    } else if (extra.empty() && negated) {
      out_ += fmt::format("\\P{{{}}}", *prop);
    } else {
      set(base + extra, negated);
    }
  }

  void escape() {
    if (i_ + 1 >= p_.size()) reject("a trailing backslash");
    const char e = p_[i_ + 1];
    i_ += 2;
    switch (e) {
      case 's': set(kWhiteSpace, false); return;
      case 'S': set(kWhiteSpace, true); return;
      // Oniguruma's Unicode \w is Letter | Mark | Number | Connector_Punctuation; \d is Decimal_Number.
      case 'w': set("\\p{L}" + assigned_after_pcre2("L") + "\\p{M}" + assigned_after_pcre2("M") + "\\p{N}" +
                        assigned_after_pcre2("N") + "\\p{Pc}" + assigned_after_pcre2("Pc"),
                    false);
        return;
      case 'W': set("\\p{L}" + assigned_after_pcre2("L") + "\\p{M}" + assigned_after_pcre2("M") + "\\p{N}" +
                        assigned_after_pcre2("N") + "\\p{Pc}" + assigned_after_pcre2("Pc"),
                    true);
        return;
      case 'd': set("\\p{Nd}" + assigned_after_pcre2("Nd"), false); return;
      case 'D': set("\\p{Nd}" + assigned_after_pcre2("Nd"), true); return;
      case 'h': set("0-9a-fA-F", false); return;  // Oniguruma: hexadecimal digit (PCRE2: horizontal space)
      case 'H': set("0-9a-fA-F", true); return;
      case 'p': property(false); return;
      case 'P': property(true); return;
      case 'u': {
        if (i_ + 4 > p_.size()) reject("a short \\u escape");
        for (size_t k = 0; k < 4; ++k) {
          if (!std::isxdigit(static_cast<unsigned char>(p_[i_ + k]))) reject("a malformed \\u escape");
        }
        out_ += fmt::format("\\x{{{}}}", p_.substr(i_, 4));
        i_ += 4;
        return;
      }
      case 'x': case 'n': case 'r': case 't': case 'f': case 'a': case 'e':
      case 'A': case 'z': case 'Z':
      case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        out_ += '\\';
        out_ += e;
        return;
      default:
        if (std::isalnum(static_cast<unsigned char>(e))) reject(fmt::format("escape \\{}", e));
        out_ += '\\';  // an escaped punctuation character or byte is a literal in both dialects
        out_ += e;
        return;
    }
  }

  void class_char() {
    const char c = p_[i_];
    if (c == '[') reject(p_.substr(i_, 2) == "[:" ? "a POSIX bracket expression" : "a nested character class");
    if (c == '&' && p_.substr(i_, 2) == "&&") reject("class intersection &&");
    out_ += c;
    ++i_;
    if (c == ']') in_class_ = false;
  }

  void outside_char() {
    const char c = p_[i_];
    if (c == '^' || c == '$') reject("an anchor ^ or $ (line semantics differ)");
    if (c == '[') {
      in_class_ = true;
      out_ += c;
      ++i_;
      if (i_ < p_.size() && p_[i_] == '^') out_ += p_[i_++];
      if (i_ < p_.size() && p_[i_] == ']') out_ += p_[i_++];  // a leading ']' is a literal in both dialects
      return;
    }
    if (c == '(' && p_.substr(i_, 2) == "(?") group_open();
    out_ += c;
    ++i_;
  }

  // Checks the group syntax after "(?"; only the dialect-neutral kinds pass.
  void group_open() const {
    const std::string_view rest = p_.substr(i_ + 2);
    for (std::string_view ok : {":", "=", "!", "<=", "<!", ">"}) {
      if (rest.substr(0, ok.size()) == ok) return;
    }
    if (rest.substr(0, 1) == "<" && rest.size() > 1 && std::isalpha(static_cast<unsigned char>(rest[1]))) {
      return;  // (?<name>...)
    }
    // Inline options: only case-insensitivity means the same in both ((?m) is dotall in Oniguruma).
    size_t k = 0;
    while (k < rest.size() && (rest[k] == 'i' || rest[k] == '-')) ++k;
    if (k > 0 && k < rest.size() && (rest[k] == ':' || rest[k] == ')')) return;
    reject("this group or inline-option syntax");
  }

  std::string_view p_;
  std::string_view where_;
  size_t i_ = 0;
  bool in_class_ = false;
  std::string out_;
};

}  // namespace

std::string onig_to_pcre2(std::string_view pattern, std::string_view where) {
  return Translator(pattern, where).run();
}

std::string pcre2_literal(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) {
      // Non-alphanumeric ASCII escaped with a backslash is always a literal in PCRE2; control characters are
      // written as \x{..} so that no raw newline or NUL reaches the pattern.
      out += u < 0x20 || u == 0x7F ? fmt::format("\\x{{{:X}}}", u) : std::string{'\\', c};
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace tandem::tokenizer
