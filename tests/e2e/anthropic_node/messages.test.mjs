import assert from 'node:assert/strict';
import test from 'node:test';

import { both, client, comparable, model } from './client.mjs';

const messages = [{ role: 'user', content: 'Who are you?' }];

test('messages.create returns an Anthropic message', async () => {
  const m = await client.messages.create({ model, max_tokens: 16, temperature: 0, messages });
  assert.match(m.id, /^msg_/);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, model);
  assert.ok(['end_turn', 'max_tokens'].includes(m.stop_reason), m.stop_reason);
  assert.equal(m.stop_sequence, null);
  assert.ok(m.content.length >= 1);
  for (const block of m.content) assert.ok(['text', 'thinking'].includes(block.type), JSON.stringify(block));
  const text = m.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
  assert.ok(text.length > 0);
  assert.ok(!text.includes('<think>'), 'reasoning is not text');
  assert.ok(m.usage.input_tokens + m.usage.cache_read_input_tokens > 0);
  assert.equal(m.usage.cache_creation_input_tokens, 0);
  assert.ok(m.usage.output_tokens > 0 && m.usage.output_tokens <= 16);
  assert.equal(m.stop_reason === 'max_tokens', m.usage.output_tokens === 16);
});

test('the stream helper accumulates the non-streamed message, in Anthropic event order', async () => {
  const { whole, streamed, events } = await both({ model, max_tokens: 24, temperature: 0, messages });
  assert.deepEqual(comparable(streamed), comparable(whole));
  assert.equal(events[0], 'message_start');
  assert.deepEqual(events.slice(-2), ['message_delta', 'message_stop']);
  assert.ok(events.includes('content_block_start') && events.includes('content_block_delta') &&
            events.includes('content_block_stop'), events.join(' '));
});

test('the raw event stream: message_start, blocks with their indexes, message_delta, message_stop', async () => {
  const stream = await client.messages.create({ model, max_tokens: 12, temperature: 0, messages, stream: true });
  const types = [];
  let open = -1;
  let blocks = 0;
  let text = '';
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'content_block_start') {
      assert.equal(open, -1, 'one block at a time');
      assert.equal(event.index, blocks++);
      open = event.index;
    } else if (event.type === 'content_block_delta') {
      assert.equal(event.index, open);
      if (event.delta.type === 'text_delta') text += event.delta.text;
    } else if (event.type === 'content_block_stop') {
      assert.equal(event.index, open);
      open = -1;
    } else if (event.type === 'message_delta') {
      assert.equal(event.usage.output_tokens, 12);
      assert.equal(event.delta.stop_reason, 'max_tokens');
    }
  }
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.equal(open, -1);
  assert.ok(text.length > 0);
});

test('a system prompt, as a string and as text blocks, reaches the prompt', async () => {
  const plain = await client.messages.countTokens({ model, messages });
  const withSystem = await client.messages.countTokens({ model, messages, system: 'You are a helpful assistant.' });
  const asBlocks = await client.messages.countTokens({
    model, messages, system: [{ type: 'text', text: 'You are a helpful ' }, { type: 'text', text: 'assistant.' }] });
  assert.ok(withSystem.input_tokens > plain.input_tokens, `${withSystem.input_tokens} vs ${plain.input_tokens}`);
  assert.equal(asBlocks.input_tokens, withSystem.input_tokens);
  const { whole, streamed } = await both({ model, max_tokens: 16, temperature: 0, messages,
                                           system: 'You are a helpful assistant.' });
  assert.deepEqual(comparable(streamed), comparable(whole));
  assert.equal(whole.usage.input_tokens + whole.usage.cache_read_input_tokens, withSystem.input_tokens);
});

test('count_tokens counts the prompt messages.create renders', async () => {
  const params = { model, messages: [{ role: 'user', content: 'Tell me about the beginning.' }] };
  const n = await client.messages.countTokens(params);
  assert.ok(Number.isInteger(n.input_tokens) && n.input_tokens > 0);
  const m = await client.messages.create({ ...params, max_tokens: 4, temperature: 0 });
  assert.equal(m.usage.input_tokens + m.usage.cache_read_input_tokens, n.input_tokens);
});

test('stop_sequences end the text before the sequence, with stop_reason stop_sequence', async () => {
  const free = await client.messages.create({ model, max_tokens: 24, temperature: 0, messages });
  const text = free.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
  assert.ok(text.length > 12, text);
  const stop = text.slice(8, 11);
  const params = { model, max_tokens: 24, temperature: 0, messages, stop_sequences: ['never appears', stop] };
  const { whole, streamed } = await both(params);
  assert.equal(whole.stop_reason, 'stop_sequence');
  assert.equal(whole.stop_sequence, stop);
  assert.equal(whole.content.filter((b) => b.type === 'text').map((b) => b.text).join(''), text.slice(0, text.indexOf(stop)));
  assert.deepEqual(comparable(streamed), comparable(whole));
});

test('thinking on and off: the template hears it, streamed equals non-streamed', async () => {
  const on = { model, max_tokens: 24, temperature: 0, messages, thinking: { type: 'enabled', budget_tokens: 1024 } };
  const off = { ...on, thinking: { type: 'disabled' } };
  const nOn = await client.messages.countTokens({ model, messages, thinking: on.thinking });
  const nOff = await client.messages.countTokens({ model, messages, thinking: off.thinking });
  assert.notEqual(nOn.input_tokens, nOff.input_tokens, 'enable_thinking changes the GLM-4.5 prompt');
  for (const params of [on, off]) {
    const { whole, streamed } = await both(params);
    assert.deepEqual(comparable(streamed), comparable(whole));
    for (const block of whole.content) {
      if (block.type === 'thinking') assert.equal(typeof block.signature, 'string');
      if (block.type === 'text') assert.ok(!block.text.includes('</think>'), block.text);
    }
  }
  // Off: the prompt closes the think block, so nothing the model writes is reasoning.
  const { whole } = await both(off);
  assert.ok(whole.content.every((b) => b.type !== 'thinking'), JSON.stringify(whole.content));
});
