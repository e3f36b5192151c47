import assert from 'node:assert/strict';
import test from 'node:test';

import { client, model, prompt } from './client.mjs';

test('models.list names the served model', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual(ids, [model]);
  const one = await client.models.retrieve(model);
  assert.equal(one.id, model);
  assert.equal(one.object, 'model');
});

test('completions.create returns text and usage', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 8, temperature: 0, ignore_eos: true });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
});

test('completions: token-id prompt, n, logprobs, stop', async () => {
  const base = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true,
                                                 logprobs: 2 });
  const text = base.choices[0].text;
  assert.equal(base.choices[0].logprobs.tokens.length, 12);
  assert.equal(base.choices[0].logprobs.top_logprobs.length, 12);

  const n = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true, n: 2 });
  assert.deepEqual(n.choices.map((c) => c.index), [0, 1]);
  for (const c of n.choices) assert.equal(c.text, text);

  // A stop string taken from the middle of the greedy output truncates right before it.
  const mid = Math.floor(text.length / 2);
  const stop = text.slice(mid, mid + 2);
  if (stop.length === 2) {
    const s = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true, stop });
    assert.equal(s.choices[0].text, text.slice(0, text.indexOf(stop)));
    assert.equal(s.choices[0].finish_reason, 'stop');
  }
});
