// Shared setup for the OpenAI Node SDK tests: the SDK from tests/npm (pinned in tests/npm/package.json) and a
// client for the server the C++ harness started (openai_node_test.cpp passes its address in the environment).
import { createRequire } from 'node:module';
import path from 'node:path';

const npmDir = process.env.TANDEM_NPM_DIR;
if (!npmDir || !process.env.TANDEM_BASE_URL) {
  throw new Error('run through openai_node_test (TANDEM_NPM_DIR and TANDEM_BASE_URL must be set)');
}
const require = createRequire(path.join(npmDir, 'package.json'));
const mod = require('openai');
export const OpenAI = mod.OpenAI ?? mod.default ?? mod;

export const model = process.env.TANDEM_MODEL;
// No retries: a retried 5xx would hide a server error, and 4xx must surface as typed errors at once.
export const client = new OpenAI({ apiKey: 'tandem-test', baseURL: process.env.TANDEM_BASE_URL, maxRetries: 0,
                                   timeout: 120_000 });

export const prompt = 'The quick brown fox jumps over the lazy dog. Then the fox';
export const messages = [{ role: 'user', content: 'Tell me a short story about a fox.' }];
