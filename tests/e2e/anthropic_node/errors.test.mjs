import assert from 'node:assert/strict';
import test from 'node:test';

import { Anthropic, client, model } from './client.mjs';

const messages = [{ role: 'user', content: 'Who are you?' }];
const tools = [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];

async function rejects(promise, ErrorClass, status, type) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ErrorClass, `expected ${ErrorClass.name}, got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, status);
    assert.equal(err.type, type);
    assert.equal(err.error?.type, 'error', JSON.stringify(err.error));
    assert.equal(typeof err.error?.error?.message, 'string');
    assert.ok(err.error.error.message.length > 0);
    return true;
  });
}

test('invalid requests raise BadRequestError (invalid_request_error)', async () => {
  const bad = 'invalid_request_error';
  await rejects(client.messages.create({ model, messages }), Anthropic.BadRequestError, 400, bad);  // no max_tokens
  await rejects(client.messages.create({ model, max_tokens: 0, messages }), Anthropic.BadRequestError, 400, bad);
  await rejects(client.messages.create({ model, max_tokens: 8, messages: [] }), Anthropic.BadRequestError, 400, bad);
  await rejects(client.messages.create({ model, max_tokens: 8, temperature: 2, messages }), Anthropic.BadRequestError,
                400, bad);
  await rejects(client.messages.create({ model, max_tokens: 8, messages: [{ role: 'user', content: [
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] }] }),
                Anthropic.BadRequestError, 400, bad);
  await rejects(client.messages.create({ model, max_tokens: 8, messages: [{ role: 'user', content: [
    { type: 'tool_result', tool_use_id: 'toolu_missing', content: 'x' }] }] }), Anthropic.BadRequestError, 400, bad);
  await rejects(client.messages.create({ model, max_tokens: 8, messages, tools, tool_choice: { type: 'any' } }),
                Anthropic.BadRequestError, 400, bad);
  await rejects(client.messages.create({ model, max_tokens: 8, messages, tools,
                                        tool_choice: { type: 'tool', name: 'get_weather' } }),
                Anthropic.BadRequestError, 400, bad);
  await rejects(client.messages.create({ model, max_tokens: 8, messages, tools, tool_choice: { type: 'sometimes' } }),
                Anthropic.BadRequestError, 400, bad);
  await rejects(client.messages.countTokens({ model, messages: [{ role: 'system', content: 'x' }] }),
                Anthropic.BadRequestError, 400, bad);
});

test('an unknown model raises NotFoundError (not_found_error)', async () => {
  await rejects(client.messages.create({ model: 'no-such-model', max_tokens: 8, messages }),
                Anthropic.NotFoundError, 404, 'not_found_error');
  await rejects(client.messages.countTokens({ model: 'no-such-model', messages }), Anthropic.NotFoundError, 404,
                'not_found_error');
});

test('errors of a stream request surface before streaming starts', async () => {
  await rejects(client.messages.stream({ model, max_tokens: 8, messages, tools, tool_choice: { type: 'any' } })
                  .finalMessage(),
                Anthropic.BadRequestError, 400, 'invalid_request_error');
  await rejects(client.messages.create({ model, max_tokens: 8, temperature: -1, messages, stream: true }),
                Anthropic.BadRequestError, 400, 'invalid_request_error');
});
