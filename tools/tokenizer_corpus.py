#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/corpus.json: the texts the tokenizer parity tests encode with Hugging Face
`tokenizers` (tools/tokenizer_vectors.py / .js) and with tandem. Deterministic; rerun after editing.

Kept to characters of Unicode <= 14 so that any recent `tokenizers` release gives the same ids (its regex engine's
Unicode version moved from 14 to 16 over releases); newer characters are covered by hand-checked unit tests."""
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "corpus.json")

PROSE = """The history of the printing press is, in many ways, the history of modern Europe. Before Johannes \
Gutenberg's workshop in Mainz began producing books with movable metal type around 1450, a manuscript could take \
a scribe months to copy; afterwards, a single press could turn out hundreds of sheets a day. Within fifty years, \
presses had spread to more than 270 cities, and an estimated 20 million volumes had been printed.

Historians still argue about what followed. Some credit the press with the Reformation, the Scientific Revolution \
and the rise of vernacular literature; others point out that literacy rates stayed low for centuries, and that \
most early books were religious texts, almanacs and legal forms. "It wasn't a revolution overnight," one scholar \
wrote, "but it changed what counted as knowledge -- and who got to keep it."

What is certain is that the economics changed. A Bible that cost a year's wages in 1440 cost a month's by 1500. \
Printers competed on price, on typefaces, and on speed; they pirated each other's editions, fought over \
privileges, and went bankrupt at remarkable rates. Aldus Manutius in Venice invented the pocket-sized octavo and \
italic type; Christophe Plantin in Antwerp ran 16 presses and employed 80 workers at his peak (c. 1576).

Today's debates about the internet echo those of the 1500s: too much information, too little trust, and a \
market that rewards whoever is first rather than whoever is right. Then as now, the technology itself was \
neutral. The people who used it weren't.
"""

CODE_PY = '''def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    if n <= 0:
        return []
    seq = [0, 1]
    while len(seq) < n:
        seq.append(seq[-1] + seq[-2])
    return seq[:n]


if __name__ == "__main__":
    for i, x in enumerate(fibonacci(20)):
        print(f"{i:>3}: {x:,}")
'''

CODE_CPP = '''#include <vector>
template <typename T>
T sum(const std::vector<T>& xs) {
\tT acc{};
\tfor (const auto& x : xs) acc += x;  // naive
\treturn acc;
}
int main() { return sum<int>({1, 2, 3}) == 6 ? 0 : 1; }
'''

CODE_JSON = '{"model": "glm-4.5", "messages": [{"role": "user", "content": "Hi!"}], "temperature": 0.7, ' \
            '"max_tokens": 1024, "stream": true, "tools": []}'

HTML = '<!DOCTYPE html>\n<html lang="en">\n  <head><meta charset="utf-8"><title>Test &amp; check</title></head>\n' \
       '  <body>\n    <p class="x">Hello, <b>world</b>!</p>\n  </body>\n</html>\n'

SHELL = "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do\n  wc -l \"$f\" | awk '{print $1}' >> counts.log\ndone\n"

MARKDOWN = """# Release notes

## v2.3.0 (2025-06-01)

* **Faster** decoding: ~1.8x on long prompts.
* Fixed a bug where `max_tokens=0` returned one token.
* New flag: `--kv-cache-dtype fp8_e4m3`.

| model | tokens/s | TTFT (ms) |
|-------|---------:|----------:|
| 7B    | 1,234.5  | 45        |
| 70B   | 310.0    | 180       |

> Note: results on 8x H100, batch 64.
"""

SPECIAL = [
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
    "<|im_start|>assistant\n",
    "<|endoftext|>", "<|endoftext|><|endoftext|>", "text<|endoftext|>more", " <|im_end|> ",
    "[gMASK]<sop><|system|>\nYou are GLM.<|user|>\nWhat is 2+2?<|assistant|>\n<think>\nEasy.</think>\n4",
    "<think>\n\n</think>\n\n", "<think>reasoning</think>answer", "<tool_call>{\"name\": \"f\"}</tool_call>",
    "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>",
    "<|observation|><tool_response>\n{\"temp\": 21}\n</tool_response>", "/nothink hello", "a/nothink",
    "<|im_start", "<|im_start|", "im_start|>", "<<|im_end|>>", "<|im_end|><|im_start|>", "<|IM_START|>",
    "<|fim_prefix|>def f():<|fim_suffix|>\n    return 1<|fim_middle|>",
    "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>Hello<｜end▁of▁sentence｜>",
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{}\n```<｜tool▁call▁end｜>",
    "[MASK] [sMASK] <eop> <sop>", "<|begin_of_image|><|end_of_image|>",
]

SCRIPTS = [
    "中文分词测试：今天天气很好，我们去公园散步吧！", "日本語のテキスト：ひらがな、カタカナ、漢字を含む文です。",
    "한국어 문장입니다. 안녕하세요, 반갑습니다!", "مرحبا بالعالم، هذا نص عربي للاختبار.",
    "नमस्ते दुनिया, यह हिंदी का परीक्षण है।", "สวัสดีชาวโลก นี่คือการทดสอบภาษาไทย",
    "שָׁלוֹם עוֹלָם", "Γειά σου Κόσμε, τι κάνεις;", "Привет, мир! Ёлки-палки.", "გამარჯობა მსოფლიო",
    "Բարեւ աշխարհ", "வணக்கம் உலகம்", "ওহে বিশ্ব", "ሰላም ልዑል", "Xin chào thế giới, Tiếng Việt có dấu.",
    "Hello世界123مرحبا", "mixed: abc АБВ αβγ 中文 かな 한글 123 ١٢٣ ๑๒๓", "Straße, Œuvre, façade, naïve, Ærø",
]

EMOJI = [
    "😀😃😄😁", "👨‍👩‍👧‍👦 family", "🇺🇸🇯🇵🇩🇪 flags", "👍🏽👍🏿 thumbs", "1️⃣ 2️⃣ #️⃣", "❤️‍🔥 heart on fire",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕥𝕖𝕩𝕥", "𠀀𠀁𠀂 ext-B", "🏳️‍🌈", "I ❤ NY ☃ ★ ✓ ✗", "emoji at end 🤖",
]

COMBINING = [
    "e\u0301", "cafe\u0301", "a\u0323\u0302", "a\u0302\u0323", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "\u212b", "\u2126 ohm", "A\u030a", "\ufb01 ligature", "Zalgo: Z\u0351\u036b\u0343a\u0337\u0327l\u0315g\u0356o",
    "Vie\u0323\u0302t", "q\u0307\u0323", "\u0041\u0301\u0300\u0302", "\u0915\u093c", "\u0958", "\u00c5\u0301",
    "x\u0301\u0316\u0301", "\u0e01\u0e34\u0e4a", "\u05e9\u05c1\u05b8", "\u0300 leading mark",
]

WHITESPACE = (
    [" " * n for n in (1, 2, 3, 4, 7, 8, 16, 33)]
    + ["\n" * n for n in (1, 2, 3, 5, 10)]
    + ["\t", "\t\t\t", " \t \t", "a  b   c    d", "a\n\nb\n\n\nc", "end with spaces   ", "   start with spaces",
       "line1\r\nline2\r\n\r\nline3", "\r", "\r\r\n\n", "x \n y \n\n z", "trailing newline\n", "\n\nleading",
       "tab\tseparated\tvalues\n1\t2\t3", "nbsp\u00a0here\u00a0\u00a0", "ideographic\u3000space", "nel\u0085x",
       "ls\u2028ps\u2029", "\u2003em\u2002en\u2009thin", " \u00a0 \u00a0", "  \n  \n  ", "x" + " " * 100 + "y",
       "\n" * 30 + "after"]
)

DIGITS = (["1234567890123456789012"[:n] for n in range(1, 21)]
          + ["3.14159", "1e-10", "v1.2.3", "1,234,567.89", "2025-06-01", "0x1F", "1/2", "1 2 3", "100%",
             "١٢٣٤٥ Arabic-Indic", "१२३ Devanagari", "１２３ fullwidth", "Ⅻ roman", "½ ¾ ²³"])

OTHER = [
    "", " ", "a", "Hello world", " Hello world", "Hello World!", "hello,world", "I'm", "don't", "WE'LL", "it's",
    "They'RE", "'s", "'S", "'ſt", "o'clock", "rock 'n' roll", "She said \u201chi\u201d \u2014 and left\u2026",
    "It\u2019s", "$$$", "!!!???", "...", "a.b.c", "https://example.com/path?q=1&r=%20#frag", "user@example.org",
    "#hashtag @mention", "SGVsbG8gd29ybGQhIGJhc2U2NA==", "deadbeefcafebabe", "123e4567-e89b-12d3-a456-426614174000",
    "zero\u200bwidth\u200cnon\u200djoiner", "\ufeffBOM", "soft\u00adhyphen", "ALL CAPS SENTENCE.",
    "MiXeD cAsE wOrDs", "snake_case_identifier", "camelCaseIdentifier", "kebab-case-id", "__dunder__",
    "C:\\Windows\\System32", "~/.config/tandem", "a=b&&c||d", "x += 1; y -= 2;", "<div>&nbsp;</div>",
    "\x00 nul \x01 ctrl \x7f del", "\u00ff\u00fe\u00fd latin1", "\u0100\u0120\u0143 byte-level alphabet chars",
    "ĠĊ literal byte-level glyphs", "\ud7ff\ue000\uf8ff private use", "\U0010fffd plane 16", "\uffff\ufffe",
    "\ufffd replacement char",
]


def random_strings(rng, count):
    """Strings mixing characters from many categories, to catch what hand-written text misses."""
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " \t\n\r", ".,;:!?'\"()[]{}<>-_/\\|@#$%^&*+=~`",
        "éèêëàâäôöûüçñßøåæœ", "中文字符测试汉字", "ひらがなカタカナ", "한국어", "\u0301\u0323\u0302\u0308\u0338",
        "\u00a0\u3000\u2003\u0085\u2028", "😀👍🏽❤️🇯🇵", "\u200b\u200c\u200d\ufeff", "αβγδΩ", "абвгдЖ", "ابتث", "अआइ्",
        "<|im_start|><|im_end|><think></think>",
    ]
    out = []
    for _ in range(count):
        n = rng.randint(1, 40)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(n)))
    return out


def main():
    rng = random.Random(20250601)
    corpus = []
    corpus += [PROSE, PROSE.replace("\n\n", "\n"), PROSE * 3, CODE_PY, CODE_CPP, CODE_JSON, HTML, SHELL, MARKDOWN]
    corpus += [p for p in PROSE.split("\n\n")]
    corpus += [s for s in PROSE.replace("\n", " ").split(". ") if s]
    corpus += SPECIAL + SCRIPTS + EMOJI + COMBINING + WHITESPACE + DIGITS + OTHER
    corpus += random_strings(rng, 60)
    seen = set()
    unique = []
    for s in corpus:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    assert len(unique) >= 200, len(unique)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(unique, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {OUT}: {len(unique)} strings, {sum(len(s.encode()) for s in unique)} bytes")


if __name__ == "__main__":
    main()
