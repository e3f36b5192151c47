import assert from 'node:assert/strict';
import test from 'node:test';

import { client, model } from './client.mjs';

// Tools and a tool round trip through the SDK's own types and stream helper. The bundled model was not trained to
// call tools, so the final message is compared between the SDK's accumulation of the stream and the non-streamed
// response of the same greedy request, whatever it holds.
const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Current weather',
                                  parameters: { type: 'object', properties: { city: { type: 'string' },
                                                                              days: { type: 'integer' } },
                                                required: ['city'] } } },
];
const messages = [
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: null,
    tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "days": 1}' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: 'sunny, 21 C' },
  { role: 'user', content: 'And in Oslo?' },
];

function comparable(message) {
  return {
    content: message.content ?? '',
    reasoning_content: message.reasoning_content ?? '',
    tool_calls: (message.tool_calls ?? []).map((c) => ({ type: c.type, name: c.function.name, arguments: c.function.arguments })),
  };
}

test('a tool round trip: the stream helper accumulates the non-streamed message', async () => {
  const params = { model, messages, tools, max_tokens: 24, temperature: 0 };
  const full = await client.chat.completions.create(params);
  const runner = client.chat.completions.stream(params);
  const final = await runner.finalChatCompletion();
  assert.deepEqual(comparable(final.choices[0].message), comparable(full.choices[0].message));
  assert.equal(final.choices[0].finish_reason, full.choices[0].finish_reason);
  assert.ok(!(full.choices[0].message.content ?? '').includes('<think>'), 'reasoning is not content');
  for (const c of full.choices[0].message.tool_calls ?? []) assert.equal(typeof JSON.parse(c.function.arguments), 'object');
});

test('tool_choice required is refused as a BadRequestError naming tool_choice', async () => {
  await assert.rejects(client.chat.completions.create({ model, messages, tools, tool_choice: 'required', max_tokens: 2 }),
                       (e) => e.status === 400 && e.param === 'tool_choice');
});

test('a tool message answering no call is a BadRequestError', async () => {
  await assert.rejects(
    client.chat.completions.create({ model, max_tokens: 2,
                                     messages: [{ role: 'user', content: 'hi' },
                                                { role: 'tool', tool_call_id: 'call_9', content: 'x' }] }),
    (e) => e.status === 400 && e.param === 'messages[1].tool_call_id');
});
