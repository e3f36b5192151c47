import assert from 'node:assert/strict';
import test from 'node:test';

import { OpenAI, client, messages, model, prompt } from './client.mjs';

async function rejects(promise, ErrorClass, status, param) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ErrorClass, `expected ${ErrorClass.name}, got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, status);
    assert.equal(typeof err.message, 'string');
    if (param !== undefined) assert.equal(err.param, param);
    return true;
  });
}

test('invalid sampling parameters raise BadRequestError with the field', async () => {
  await rejects(client.completions.create({ model, prompt, temperature: -1 }), OpenAI.BadRequestError, 400, 'temperature');
  await rejects(client.completions.create({ model, prompt, top_p: 2 }), OpenAI.BadRequestError, 400, 'top_p');
  await rejects(client.completions.create({ model, prompt, max_tokens: 0 }), OpenAI.BadRequestError, 400, 'max_tokens');
  await rejects(client.completions.create({ model, prompt, logprobs: 21 }), OpenAI.BadRequestError, 400, 'logprobs');
  await rejects(client.chat.completions.create({ model, messages, logprobs: true, top_logprobs: 30 }),
                OpenAI.BadRequestError, 400, 'top_logprobs');
  await rejects(client.chat.completions.create({ model, messages: [] }), OpenAI.BadRequestError, 400, 'messages');
});

test('a prompt beyond the context raises BadRequestError', async () => {
  const info = await (await fetch(process.env.TANDEM_BASE_URL.replace(/\/v1$/, '') + '/get_model_info')).json();
  const ids = new Array(info.max_model_len + 1).fill(1);
  await rejects(client.completions.create({ model, prompt: ids, max_tokens: 1 }), OpenAI.BadRequestError, 400);
  await rejects(client.completions.create({ model, prompt, max_tokens: info.max_model_len }),
                OpenAI.BadRequestError, 400, 'max_tokens');
});

test('an unknown model raises NotFoundError', async () => {
  await rejects(client.completions.create({ model: 'no-such-model', prompt }), OpenAI.NotFoundError, 404, 'model');
  await rejects(client.chat.completions.create({ model: 'gpt-4o', messages }), OpenAI.NotFoundError, 404, 'model');
  await rejects(client.models.retrieve('no-such-model'), OpenAI.NotFoundError, 404);
});

test('an unknown parameter raises BadRequestError', async () => {
  await rejects(client.completions.create({ model, prompt, not_a_parameter: 1 }), OpenAI.BadRequestError, 400,
                'not_a_parameter');
});

test('errors in a stream request surface before streaming starts', async () => {
  await rejects(client.completions.create({ model, prompt, temperature: -2, stream: true }), OpenAI.BadRequestError,
                400, 'temperature');
});
