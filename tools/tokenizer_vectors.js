#!/usr/bin/env node
// Writes tests/fixtures/tokenizer/<name>.expected.json: Hugging Face `tokenizers` ids and decodes for the corpus
// (tests/fixtures/tokenizer/corpus.json), plus decodes of id sequences that cut characters apart, for each
// tokenizer of tests/fixtures/tokenizer/variants.json. tandem's parity test must reproduce them exactly.
// Same output as tools/tokenizer_vectors.py (Python binding); this one uses the Node binding of the same Rust
// library, installed by `npm install` in tests/npm (scripts/setup does it).
//
// Usage: node tools/tokenizer_vectors.js [VARIANT | NAME=SPEC ...]
//   no arguments: every variant whose tokenizer file exists.
//   SPEC: npm:<path under tests/npm/node_modules> | repo:<path in the repo> | <file path>
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const fixtures = path.join(root, 'tests', 'fixtures', 'tokenizer');
const npmRoot = path.join(root, 'tests', 'npm', 'node_modules');
const { Tokenizer } = require(path.join(npmRoot, 'tokenizers'));
const tokenizersVersion = require(path.join(npmRoot, 'tokenizers', 'package.json')).version;

function resolveSpec(spec) {
  if (spec.startsWith('npm:')) return path.join(npmRoot, spec.slice(4));
  if (spec.startsWith('repo:')) return path.join(root, spec.slice(5));
  return path.resolve(spec);
}

// RFC 7386 JSON merge patch, as nlohmann::json::merge_patch applies it in the C++ test.
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// xorshift32, identical in the Python tool, so both draw the same id sequences.
function rng(seed) {
  let x = seed >>> 0;
  return () => {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    return x;
  };
}

function byteLevelChar(b) {
  const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  if (printable) return String.fromCodePoint(b);
  let n = 0;
  for (let c = 0; c < b; ++c) {
    if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff))) ++n;
  }
  return String.fromCodePoint(0x100 + n);
}

// Id sequences for decode: slices of the corpus encodings (cutting multi-byte characters apart) and random mixes
// of ordinary, added, single-byte and unknown ids; skip_special_tokens alternates.
function decodeCases(tokJson, tok, corpusIds) {
  const next = rng(2463534242);
  const vocabSize = tok.getVocabSize(true);
  const added = (tokJson.added_tokens || []).map((t) => t.id).sort((a, b) => a - b);
  const byteIds = [];
  for (let b = 0x80; b < 0x100; ++b) {
    const id = tok.tokenToId(byteLevelChar(b));
    if (id !== null && id !== undefined) byteIds.push(id);
  }
  const cases = [];
  corpusIds.forEach((ids, i) => {
    if (ids.length < 2) return;
    const a = next() % ids.length;
    const b = a + 1 + (next() % Math.min(8, ids.length - a));
    cases.push({ ids: ids.slice(a, b), skip_special_tokens: i % 2 === 1 });
  });
  for (let c = 0; c < 400; ++c) {
    const n = 1 + (next() % 12);
    const ids = [];
    for (let k = 0; k < n; ++k) {
      const r = next() % 100;
      if (r < 60 || (r < 80 && added.length === 0) || (r >= 80 && r < 97 && byteIds.length === 0)) {
        ids.push(next() % vocabSize);
      } else if (r < 80) {
        ids.push(added[next() % added.length]);
      } else if (r < 97) {
        ids.push(byteIds[next() % byteIds.length]);
      } else {
        ids.push(vocabSize + (next() % 1000));
      }
    }
    cases.push({ ids, skip_special_tokens: c % 2 === 1 });
  }
  return cases;
}

async function generate(variant, corpus, corpusSha) {
  const file = resolveSpec(variant.tokenizer_file);
  if (!fs.existsSync(file)) {
    console.log(`${variant.name}: skipped, ${file} does not exist`);
    return;
  }
  const original = JSON.parse(fs.readFileSync(file, "utf8"));
  const tokJson = variant.patch ? mergePatch(original, variant.patch) : original;
  const tok = Tokenizer.fromString(JSON.stringify(tokJson));
  const ids = [];
  const decoded = [];
  for (const text of corpus) {
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    ids.push(Array.from(enc.getIds()));
    decoded.push(await tok.decode(ids[ids.length - 1], false));
  }
  // add_special_tokens=true on the first texts: the post_processor's template tokens.
  const idsAddSpecial = [];
  for (const text of corpus.slice(0, 20)) {
    idsAddSpecial.push(Array.from((await tok.encode(text, null, { addSpecialTokens: true })).getIds()));
  }
  const cases = decodeCases(tokJson, tok, ids);
  for (const c of cases) c.text = await tok.decode(c.ids, c.skip_special_tokens);
  const out = {
    tokenizer: variant.name,
    tokenizer_file: variant.tokenizer_file,
    patch: variant.patch || null,
    generator: `tokenizers ${tokenizersVersion} (Node binding)`,
    corpus: 'tests/fixtures/tokenizer/corpus.json',
    corpus_sha256: corpusSha,
    ids,
    decoded,
    ids_add_special_tokens: idsAddSpecial,
    decode_cases: cases,
  };
  const dest = path.join(fixtures, `${variant.name}.expected.json`);
  fs.writeFileSync(dest, JSON.stringify(out) + '\n');
  console.log(`${variant.name}: wrote ${path.relative(root, dest)} (${ids.length} texts, ${cases.length} decode cases)`);
}

(async () => {
  const corpusText = fs.readFileSync(path.join(fixtures, 'corpus.json'));
  const corpus = JSON.parse(corpusText);
  const corpusSha = crypto.createHash('sha256').update(corpusText).digest('hex');
  const variants = JSON.parse(fs.readFileSync(path.join(fixtures, 'variants.json'), 'utf8'));
  const args = process.argv.slice(2);
  const selected = args.length === 0 ? variants : args.map((a) => {
    const eq = a.indexOf('=');
    if (eq > 0) return { name: a.slice(0, eq), tokenizer_file: a.slice(eq + 1) };
    const v = variants.find((x) => x.name === a);
    if (!v) throw new Error(`unknown variant ${a}`);
    return v;
  });
  for (const v of selected) await generate(v, corpus, corpusSha);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
