import assert from 'node:assert/strict';
import test from 'node:test';

import { client, messages, model } from './client.mjs';

test('chat.completions.create returns an assistant message', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0, ignore_eos: true });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 6);
});

test('chat logprobs in the chat format', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 3, temperature: 0, ignore_eos: true,
                                                   logprobs: true, top_logprobs: 2 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 3);
  for (const t of content) {
    assert.equal(typeof t.token, 'string');
    assert.ok(t.logprob <= 0);
    assert.ok(Array.isArray(t.bytes));
    assert.equal(t.top_logprobs.length, 2);
  }
});

test('system and multi-turn messages, max_completion_tokens', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: [{ type: 'text', text: 'And the fox?' }] },
    ],
    max_completion_tokens: 4,
    temperature: 0,
    ignore_eos: true,
  });
  assert.equal(r.usage.completion_tokens, 4);
});
