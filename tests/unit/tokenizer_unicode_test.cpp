// The Unicode layer of the tokenizer against outside references: lossy UTF-8 decoding and NFC against Python
// (run as a subprocess), Oniguruma-to-PCRE2 regex translation and match iteration against Hugging Face
// `tokenizers` behaviour (cases measured with its Rust core), and the byte-level alphabet against GPT-2's table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <random>
#include <set>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/nfc.h"
#include "tokenizer/onig_pattern.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer_test_support.h"

namespace tandem::tokenizer {
namespace {

// Runs `python3 -c script` with `input` on stdin; returns stdout, or nullopt if python3 cannot run.
std::optional<std::string> run_python(const std::string& script, const std::string& input) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto in_path = dir / ("tandem_tok_py_in_" + std::to_string(::getpid()));
  const auto py_path = dir / ("tandem_tok_py_" + std::to_string(::getpid()) + ".py");
  std::ofstream(in_path, std::ios::binary) << input;
  std::ofstream(py_path) << script;
  const std::string cmd = "python3 " + py_path.string() + " < " + in_path.string() + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return std::nullopt;
  std::string out;
  std::array<char, 65536> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int rc = ::pclose(p);
  std::filesystem::remove(in_path);
  std::filesystem::remove(py_path);
  if (rc != 0) return std::nullopt;
  return out;
}

std::string hex(std::string_view bytes) {
  std::string s;
  for (char c : bytes) s += fmt::format("{:02x}", static_cast<uint8_t>(c));
  return s;
}

// Random byte strings rich in UTF-8 fragments: valid characters of every length, truncated ones, stray
// continuation bytes, overlong and surrogate encodings.
std::vector<std::string> random_byte_strings(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  const std::vector<std::string> pieces = {
      "a", " ", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xc3", "\xe4\xb8", "\xf0\x9f", "\xf0\x9f\x98",
      "\x80", "\xbf", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\xfe", "\xf5",
      "\xe0\xa0", "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf", "\xc2", "\xe1", "\xf1\x80"};
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    std::string s;
    const size_t n = 1 + rng() % 8;
    for (size_t k = 0; k < n; ++k) {
      if (rng() % 4 == 0) {
        s += static_cast<char>(rng() % 256);
      } else {
        s += pieces[rng() % pieces.size()];
      }
    }
    out.push_back(s);
  }
  return out;
}

TEST(Utf8, LossyDecodeMatchesPythonReplace) {
  const auto strings = random_byte_strings(3000, 7);
  std::string input;
  for (const auto& s : strings) input += hex(s) + "\n";
  const auto out = run_python(
      "import sys, json\n"
      "print(json.dumps([bytes.fromhex(l.strip()).decode('utf-8', 'replace') for l in sys.stdin]))\n",
      input);
  TANDEM_REQUIRE_OR_SKIP(out.has_value(),
                         "python3 is not available: install it (scripts/setup installs python3)");
  const auto expected = nlohmann::json::parse(*out);
  ASSERT_EQ(expected.size(), strings.size());
  for (size_t i = 0; i < strings.size(); ++i) {
    EXPECT_EQ(utf8::decode_lossy(strings[i]), expected[i].get<std::string>()) << hex(strings[i]);
  }
}

TEST(Utf8, ValidationAgreesWithLossyDecoding) {
  for (const auto& s : random_byte_strings(3000, 8)) {
    const bool valid = !utf8::first_invalid(s).has_value();
    EXPECT_EQ(valid, utf8::decode_lossy(s) == s) << hex(s);
  }
  EXPECT_EQ(utf8::first_invalid("ab\xc3\xa9" "c\xff"), 5u);
  EXPECT_EQ(utf8::first_invalid("abcdefghijklmnop\xed\xa0\x80"), 16u);  // a surrogate, after the 8-byte fast path
}

// The streaming property the detokenizer relies on: holding back incomplete_suffix_length() bytes at any cut makes
// the decoded pieces add up to the one-shot decode.
TEST(Utf8, HoldingBackTheIncompleteSuffixKeepsLossyDecodingStreamable) {
  std::mt19937 rng(9);
  for (const auto& s : random_byte_strings(3000, 10)) {
    std::string held, text;
    for (size_t pos = 0; pos < s.size();) {
      const size_t n = std::min<size_t>(s.size() - pos, 1 + rng() % 3);
      held += s.substr(pos, n);
      pos += n;
      const size_t hold = utf8::incomplete_suffix_length(held);
      text += utf8::decode_lossy(std::string_view(held).substr(0, held.size() - hold));
      held.erase(0, held.size() - hold);
    }
    text += utf8::decode_lossy(held);
    EXPECT_EQ(text, utf8::decode_lossy(s)) << hex(s);
  }
  EXPECT_EQ(utf8::incomplete_suffix_length("a\xf0\x9f\x98"), 3u);
  EXPECT_EQ(utf8::incomplete_suffix_length("a\xf0\x9f\x98\x80"), 0u);
  EXPECT_EQ(utf8::incomplete_suffix_length("a\xe0\x80"), 0u);  // E0 80 can never become valid
  EXPECT_EQ(utf8::incomplete_suffix_length("\xff\xc3"), 1u);
}

// Our NFC equals Python's unicodedata NFC (Unicode 14, the version our tables come from), except for the characters
// that Hugging Face's normalizer does not know (tools/unicode/hf_probe.json), where we follow HF.
TEST(Nfc, MatchesPythonUnicodedataOnEveryCodePointAndOnMarkSequences) {
  const nlohmann::json probe = testing::read_json(testing::source_dir() / "tools/unicode/hf_probe.json");
  const std::set<uint32_t> hf_unknown(probe.at("nfc_unknown").begin(), probe.at("nfc_unknown").end());
  std::vector<std::string> inputs;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if ((c >= 0xD800 && c < 0xE000) || hf_unknown.contains(c)) continue;
    std::string s;
    utf8::append(s, c);
    inputs.push_back(s);
  }
  // Sequences of starters, composites, marks of many classes and Hangul jamo, in random order.
  const std::vector<char32_t> pool = {'a', 'e', 'o', 'A', 0xC5, 0xE9, 0x1EA1, 0x212B, 0x0301, 0x0300, 0x0323,
                                      0x0302, 0x0308, 0x0327, 0x0345, 0x031B, 0x05B8, 0x05C1, 0x093C, 0x094D,
                                      0x0915, 0x0958, 0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0x0F73, 0x0344,
                                      0x1E08, 0x3099, 0x304B, 0x0CD5, 0x0CBF, 0x0DCA, 0x0DD9, 0x1B35, 0x1B05};
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = 1 + rng() % 6;
    for (int k = 0; k < n; ++k) utf8::append(s, pool[rng() % pool.size()]);
    inputs.push_back(s);
  }
  std::string input;
  for (const auto& s : inputs) input += hex(s) + "\n";
  const auto out = run_python(
      "import sys, unicodedata as u\n"
      "assert u.unidata_version == '14.0.0', u.unidata_version\n"
      "for l in sys.stdin:\n"
      "    s = bytes.fromhex(l.strip()).decode()\n"
      "    n = u.normalize('NFC', s)\n"
      "    print('=' if n == s else n.encode().hex())\n",
      input);
  TANDEM_REQUIRE_OR_SKIP(out.has_value(),
                         "python3 with Unicode 14.0 unicodedata is not available: install "
                         "Debian 12's python3 (3.11; scripts/setup installs it)");
  std::istringstream lines(*out);
  std::string line;
  size_t i = 0, mismatches = 0;
  for (; std::getline(lines, line) && i < inputs.size(); ++i) {
    std::string want = inputs[i];
    if (line != "=") {
      want.clear();
      for (size_t k = 0; k + 1 < line.size(); k += 2) {
        want += static_cast<char>(std::stoi(line.substr(k, 2), nullptr, 16));
      }
    }
    const std::string got = nfc(inputs[i]);
    if (got != want && ++mismatches <= 10) {
      ADD_FAILURE() << "input " << hex(inputs[i]) << ": python " << hex(want) << ", tandem " << hex(got);
    }
    // The quick check may only say "already NFC" when it is.
    if (nfc_quick_check(inputs[i])) {
      EXPECT_EQ(want, inputs[i]) << hex(inputs[i]);
    }
  }
  EXPECT_EQ(i, inputs.size());
  EXPECT_EQ(mismatches, 0u);
}

TEST(Nfc, FollowsHuggingFaceWhereItsTablesAreOld) {
  // HF's normalizer (Unicode ~9 tables) does not compose U+11935 U+11930 (a Unicode 13 composition), nor reorder
  // around U+10EFD (Unicode 15); measured with tokenizers 0.23.2.
  EXPECT_EQ(nfc("\U00011935\U00011930"), "\U00011935\U00011930");
  EXPECT_EQ(nfc("x\u0301\U00010EFD\u0323"), "x\u0301\U00010EFD\u0323");
  EXPECT_EQ(nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc("\u1100\u1161\u11a8"), "\uac01");
}

TEST(ByteLevel, AlphabetIsGpt2s) {
  EXPECT_EQ(byte_level::byte_to_char(' '), U'\u0120');   // Ġ
  EXPECT_EQ(byte_level::byte_to_char('\n'), U'\u010A');  // Ċ
  EXPECT_EQ(byte_level::byte_to_char('A'), U'A');
  EXPECT_EQ(byte_level::byte_to_char(0xAD), U'\u0143');  // the last of the 68 remapped bytes
  EXPECT_EQ(byte_level::byte_to_char(0xFF), U'\u00FF');
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const char32_t c = byte_level::byte_to_char(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(c).second);
    EXPECT_EQ(byte_level::char_to_byte(c), b);
  }
  EXPECT_EQ(byte_level::encode(" the\n"), "\u0120the\u010A");
  EXPECT_EQ(byte_level::decode("\u0120the\u010A"), " the\n");
  EXPECT_EQ(byte_level::decode("<\uff5cUser\uff5c>"), std::nullopt);  // '｜' is not in the alphabet
}

TEST(OnigPattern, TranslatesWhatDiffersBetweenTheDialects) {
  const std::string ws = "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
                         "\\x{202F}\\x{205F}\\x{3000}";
  EXPECT_EQ(onig_to_pcre2("\\s+(?!\\S)", "t"), "[" + ws + "]+(?![^" + ws + "])");
  EXPECT_EQ(onig_to_pcre2("[^\\s\\p{Nd}]", "t").substr(0, 2 + ws.size()), "[^" + ws);
  EXPECT_EQ(onig_to_pcre2("\\u4e00-", "t"), "\\x{4e00}-");
  EXPECT_EQ(onig_to_pcre2("(?i:'s|'t)", "t"), "(?i:'s|'t)");
  EXPECT_EQ(onig_to_pcre2("\\p{Zs}", "t"), "\\p{Zs}");
  EXPECT_NE(onig_to_pcre2("\\p{L}", "t").find("\\x{31350}-\\x{323AF}"), std::string::npos);  // CJK Ext H
  EXPECT_EQ(pcre2_literal("a.b\n"), "a\\.b\\x{A}");
}

TEST(OnigPattern, RejectsConstructsWhoseMeaningDiffers) {
  for (const char* p : {"^a", "a$", "\\bword", "[[:alpha:]]", "[a[b]]", "[a&&b]", "(?m:a)", "\\p{Han}",
                        "[\\P{L}x]", "[\\S]", "\\K", "(?x)a"}) {
    try {
      onig_to_pcre2(p, "tokenizer.json: pre_tokenizer.pattern.Regex");
      ADD_FAILURE() << p << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("pre_tokenizer.pattern.Regex"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not supported"), std::string::npos) << e.what();
    }
  }
}

TEST(OnigPattern, WhiteSpaceIsTheWhiteSpaceProperty) {
  const Regex re(onig_to_pcre2("\\s", "t"), "t");
  const std::set<char32_t> white = {0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002,
                                    0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028,
                                    0x2029, 0x202F, 0x205F, 0x3000};
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c < 0xE000) continue;
    std::string s;
    utf8::append(s, c);
    ASSERT_EQ(re.search(s), white.contains(c)) << std::hex << static_cast<uint32_t>(c);
  }
}

// Oniguruma's find_iter, which HF uses: an empty match right where the previous match ended is skipped.
TEST(Regex, FindAllIteratesLikeTheOnigCrate) {
  std::vector<std::pair<size_t, size_t>> m;
  Regex(onig_to_pcre2("a*", "t"), "t").find_all("baab", m);
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 3}, {4, 4}}));
  m.clear();
  Regex(onig_to_pcre2("(?=\\p{N})", "t"), "t").find_all("a1b22", m);
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{1, 1}, {3, 3}, {4, 4}}));
  m.clear();
  Regex("", "t").find_all("\u00e9x", m);  // steps over a whole character
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {2, 2}, {3, 3}}));
}

// Splits of Qwen3's regex where Unicode versions or case folding matter; expected pieces are those of HF
// tokenizers 0.23.2 (word ids of its encoding).
TEST(PreTokenizer, SplitsLikeHuggingFaceOnNewAndTrickyCharacters) {
  const nlohmann::json spec = {
      {"type", "Split"},
      {"pattern",
       {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                  "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
      {"behavior", "Isolated"},
      {"invert", false}};
  const PreTokenizer pre = PreTokenizer::from_json(spec, "test");
  const auto split = [&](std::string_view s) {
    std::vector<std::string> pieces;
    pre.pre_tokenize(s, pieces);
    return pieces;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split("a\U00031350b"), V{"a\U00031350b"});               // CJK Ext H (Unicode 15): a letter
  EXPECT_EQ(split("a\U000323B0b"), (V{"a", "\U000323B0b"}));         // CJK Ext J (Unicode 17): unassigned
  EXPECT_EQ(split("x\U0001E4D0\U0001E4D11"), (V{"x\U0001E4D0\U0001E4D1", "1"}));  // Nag Mundari (15)
  EXPECT_EQ(split("\U00016D40\U00016D41"), V{"\U00016D40\U00016D41"});  // Kirat Rai (16)
  EXPECT_EQ(split("it'\u017ft"), (V{"it", "'\u017f", "t"}));          // (?i:'s) matches long s
  EXPECT_EQ(split("it'St"), (V{"it", "'S", "t"}));
  EXPECT_EQ(split("a\u0085\u0085b"), (V{"a", "\u0085", "\u0085b"}));  // U+0085 is \s
  EXPECT_EQ(split("a\u180e\u180eb"), (V{"a", "\u180e\u180e", "b"}));  // U+180E is not
}

}  // namespace
}  // namespace tandem::tokenizer
