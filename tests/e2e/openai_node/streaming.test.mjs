import assert from 'node:assert/strict';
import test from 'node:test';

import { client, messages, model, prompt } from './client.mjs';

test('streamed completion text equals the non-streamed text', async () => {
  const params = { model, prompt, max_tokens: 16, temperature: 0, ignore_eos: true };
  const full = await client.completions.create(params);
  const stream = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '';
  const finishes = [];
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    ++chunks;
    if (chunk.choices.length === 0) {
      usage = chunk.usage;
      continue;
    }
    text += chunk.choices[0].text;
    if (chunk.choices[0].finish_reason !== null) finishes.push(chunks);
  }
  assert.equal(text, full.choices[0].text);
  assert.equal(finishes.length, 1);
  assert.equal(finishes[0], chunks - 1, 'finish_reason is on the last choice chunk, before the usage chunk');
  assert.equal(usage.completion_tokens, 16);
});

test('streamed chat deltas: role first, content, one finish_reason', async () => {
  const params = { model, messages, max_tokens: 12, temperature: 0, ignore_eos: true };
  const full = await client.chat.completions.create(params);
  const stream = await client.chat.completions.create({ ...params, stream: true });
  let content = '';
  let first = true;
  let finish = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    const c = chunk.choices[0];
    if (first) assert.equal(c.delta.role, 'assistant');
    first = false;
    assert.equal(finish, null, 'no chunk after the finish_reason chunk');
    if (c.delta.content) content += c.delta.content;
    if (c.finish_reason !== null) finish = c.finish_reason;
  }
  assert.equal(content, full.choices[0].message.content);
  assert.equal(finish, 'length');
});

test('the SDK stream helper accumulates the final message', async () => {
  const runner = client.chat.completions.stream({ model, messages, max_tokens: 8, temperature: 0, ignore_eos: true });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.role, 'assistant');
  assert.equal(final.choices[0].finish_reason, 'length');
});
