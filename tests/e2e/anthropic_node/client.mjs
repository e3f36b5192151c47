// Shared setup for the Anthropic TypeScript SDK tests: the SDK from tests/npm (pinned in tests/npm/package.json)
// and a client for the server the C++ harness started (anthropic_node_test.cpp passes its address in the
// environment). The SDK adds /v1/messages to the base URL itself.
import { createRequire } from 'node:module';
import path from 'node:path';

const npmDir = process.env.TANDEM_NPM_DIR;
if (!npmDir || !process.env.TANDEM_BASE_URL) {
  throw new Error('run through anthropic_node_test (TANDEM_NPM_DIR and TANDEM_BASE_URL must be set)');
}
const require = createRequire(path.join(npmDir, 'package.json'));
const mod = require('@anthropic-ai/sdk');
export const Anthropic = mod.Anthropic ?? mod.default ?? mod;

export const model = process.env.TANDEM_MODEL;
// No retries: a retried 5xx would hide a server error, and 4xx must surface as typed errors at once.
export const client = new Anthropic({ apiKey: 'tandem-test', baseURL: process.env.TANDEM_BASE_URL, maxRetries: 0,
                                      timeout: 120_000 });

/// What must agree between two responses of the same greedy request (ids differ; usage may differ by the prefix
/// cache, which turns input_tokens into cache_read_input_tokens).
export function comparable(message) {
  return {
    type: message.type,
    role: message.role,
    model: message.model,
    content: message.content.map((b) => ({ ...b })),
    stop_reason: message.stop_reason,
    stop_sequence: message.stop_sequence,
    output_tokens: message.usage.output_tokens,
    prompt_tokens: message.usage.input_tokens + (message.usage.cache_read_input_tokens ?? 0),
  };
}

/// Non-streamed, then streamed through the SDK's helper (client.messages.stream(...).finalMessage()).
export async function both(params) {
  const whole = await client.messages.create(params);
  const stream = client.messages.stream(params);
  const events = [];
  stream.on('streamEvent', (event) => events.push(event.type));
  const streamed = await stream.finalMessage();
  return { whole, streamed, events };
}
