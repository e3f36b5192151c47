import assert from 'node:assert/strict';
import test from 'node:test';

import { both, client, comparable, model } from './client.mjs';

// A tool round trip in the SDK's own types: the history holds a thinking block, a tool_use and its tool_result.
// The bundled model was not trained to call tools, so the answer is compared between the stream helper's
// accumulation and the non-streamed response of the same greedy request, whatever it holds.
const tools = [
  { name: 'get_weather', description: 'Current weather',
    input_schema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } },
                    required: ['city'] } },
];
const messages = [
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: [
    { type: 'thinking', thinking: 'The weather tool answers this.', signature: '' },
    { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris', days: 1 } }] },
  { role: 'user', content: [
    { type: 'tool_result', tool_use_id: 'toolu_01', content: 'sunny, 21 C' },
    { type: 'text', text: 'And in Oslo?' }] },
];

function checkBlocks(message) {
  for (const block of message.content) {
    assert.ok(['thinking', 'text', 'tool_use'].includes(block.type), JSON.stringify(block));
    if (block.type === 'tool_use') {
      assert.match(block.id, /^toolu_/);
      assert.equal(block.name, 'get_weather');
      assert.equal(typeof block.input, 'object');
    }
  }
  assert.equal(message.stop_reason === 'tool_use', message.content.some((b) => b.type === 'tool_use'));
}

test('a tool round trip: the stream helper accumulates the non-streamed message', async () => {
  for (const thinking of [{ type: 'enabled', budget_tokens: 1024 }, { type: 'disabled' }]) {
    const params = { model, max_tokens: 24, temperature: 0, tools, messages, thinking };
    const { whole, streamed } = await both(params);
    assert.deepEqual(comparable(streamed), comparable(whole));
    checkBlocks(whole);
    checkBlocks(streamed);
  }
});

test('the tool result reaches the prompt, and tool_choice none takes the tools out', async () => {
  const withTools = await client.messages.countTokens({ model, tools, messages });
  const none = await client.messages.countTokens({ model, tools, messages, tool_choice: { type: 'none' } });
  const noTools = await client.messages.countTokens({ model, messages });
  assert.equal(none.input_tokens, noTools.input_tokens);
  assert.ok(withTools.input_tokens > none.input_tokens);
  const shorter = structuredClone(messages);
  shorter[2].content[0].content = 'sunny';
  assert.ok((await client.messages.countTokens({ model, tools, messages: shorter })).input_tokens < withTools.input_tokens);
  const m = await client.messages.create({ model, max_tokens: 8, temperature: 0, tools, messages,
                                           tool_choice: { type: 'none' } });
  assert.ok(m.content.every((b) => b.type !== 'tool_use'));
  assert.notEqual(m.stop_reason, 'tool_use');
});
