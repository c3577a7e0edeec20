// Bounded load test on loopback: concurrent streaming clients, some disconnecting mid-stream.
// Zero 5xx, every request that was not cancelled completes, RSS after within 10% of before.
// UG_LOAD_CLIENTS / UG_LOAD_REQUESTS override the size (bench/server_load.sh runs 16 x 50).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, haveOracle, textModel, rssKiB } from './harness.js';

const skip = haveOracle() ? false : 'oracle pack or UG_CLI not available';
const clients = Number(process.env.UG_LOAD_CLIENTS ?? 16);
const perClient = Number(process.env.UG_LOAD_REQUESTS ?? 6);
let server;

before(async () => {
  if (skip) return;
  server = await startServer(['-m', textModel, '--parallel', '4', '--queue', '64', '--alias', 'tiny']);
});
after(async () => { if (server) assert.equal(await server.stop(), 0); });

// Deterministic pseudo-random choices.
let state = 12345;
const rand = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);

async function one(i) {
  const cancel = rand() < 0.3;
  const controller = new AbortController();
  const body = JSON.stringify({
    model: 'tiny', stream: true, max_tokens: 6 + Math.floor(rand() * 20), temperature: 0.8, seed: i,
    messages: [{ role: 'user', content: `request ${i}: ${'word '.repeat(Math.floor(rand() * 40))}` }],
  });
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: controller.signal,
  });
  if (res.status !== 200) return { status: res.status };
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
      if (cancel && text.includes('"content"')) {
        controller.abort();
        return { status: 200, cancelled: true };
      }
    }
  } catch (e) {
    if (cancel) return { status: 200, cancelled: true };
    throw e;
  }
  return { status: 200, completed: text.includes('data: [DONE]') && text.includes('finish_reason":"') };
}

test(`${clients} streaming clients x ${perClient} requests with random disconnects`, { skip }, async () => {
  // Warm up (first allocations), then measure.
  await one(-1);
  const before = rssKiB(server.proc.pid);
  const results = await Promise.all(Array.from({ length: clients }, async (_, c) => {
    const out = [];
    for (let k = 0; k < perClient; k++) out.push(await one(c * 1000 + k));
    return out;
  })).then((r) => r.flat());
  const fivexx = results.filter((r) => r.status >= 500).length;
  const rejected = results.filter((r) => r.status !== 200).length;
  const incomplete = results.filter((r) => r.status === 200 && !r.cancelled && !r.completed).length;
  assert.equal(fivexx, 0);
  assert.equal(rejected, 0);  // the queue is large enough for every client
  assert.equal(incomplete, 0);
  // The server must still answer and must have released the cancelled sequences.
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
  await new Promise((r) => setTimeout(r, 500));
  const metrics = await fetch(`${server.url}/metrics`).then((x) => x.text());
  assert.match(metrics, /unigemma_active_sequences 0/);
  const after = rssKiB(server.proc.pid);
  console.log(`load: ${results.length} requests, ${results.filter((r) => r.cancelled).length} cancelled, RSS ${before} -> ${after} KiB`);
  // AddressSanitizer's quarantine holds freed memory on purpose: RSS says nothing there.
  if (!process.env.ASAN_OPTIONS) assert.ok(after <= before * 1.1, `RSS grew from ${before} to ${after} KiB`);
});
