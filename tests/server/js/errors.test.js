// Bad requests get the right 4xx with a JSON error, and the server keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { startServer, haveOracle, textModel, mmModel, mmproj } from './harness.js';

const skip = haveOracle() ? false : 'oracle pack or UG_CLI not available';
const key = 'sekret-key';
let server;

before(async () => {
  if (skip) return;
  server = await startServer(['-m', mmModel, '--mmproj', mmproj, '--api-key', key, '--max-body', '8',
    '--alias', 'tiny', '--image-tokens', '70']);
});
after(async () => { if (server) assert.equal(await server.stop(), 0); });

async function post(path, body, { auth = key, raw = false } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (auth) headers.authorization = `Bearer ${auth}`;
  const res = await fetch(server.url + path, { method: 'POST', headers, body: raw ? body : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

function crc32(buf) {
  let c;
  let crc = 0xffffffff;
  for (const b of buf) {
    c = (crc ^ b) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
// A valid PNG header for a 40000 x 40000 RGB image (the pixel data is not needed to refuse it).
function hugePng() {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(40000, 0);
  ihdr.writeUInt32BE(40000, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(1000))), chunk('IEND', Buffer.alloc(0))]);
}
// 10 minutes of 8 kHz 8-bit mono PCM.
function longWav() {
  const n = 8000 * 600;
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + n, 4); h.write('WAVE', 8); h.write('fmt ', 12);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(8000, 28); h.writeUInt16LE(1, 32); h.writeUInt16LE(8, 34); h.write('data', 36); h.writeUInt32LE(n, 40);
  return Buffer.concat([h, Buffer.alloc(n, 128)]);
}

const ok = { model: 'tiny', max_tokens: 3, temperature: 0, messages: [{ role: 'user', content: 'hi' }] };
const userParts = (parts) => ({ ...ok, messages: [{ role: 'user', content: parts }] });

test('bad requests: right status, JSON error, server keeps serving', { skip }, async () => {
  const cases = [
    ['invalid JSON', '/v1/chat/completions', '{"model": "tiny", "messages": [', 400, { raw: true }],
    ['wrong type', '/v1/chat/completions', { ...ok, temperature: 'warm' }, 400],
    ['wrong type (messages)', '/v1/chat/completions', { ...ok, messages: 'hi' }, 400],
    ['unknown model', '/v1/chat/completions', { ...ok, model: 'gpt-9' }, 404],
    ['empty messages', '/v1/chat/completions', { ...ok, messages: [] }, 400],
    ['broken base64', '/v1/chat/completions', userParts([{ type: 'image_url', image_url: { url: 'data:image/png;base64,!!notbase64!!' } }]), 400],
    ['not an image', '/v1/chat/completions', userParts([{ type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8gd29ybGQ=' } }]), 400],
    ['remote media refused', '/v1/chat/completions', userParts([{ type: 'image_url', image_url: { url: 'http://127.0.0.1:1/x.png' } }]), 400],
    ['40k x 40k PNG', '/v1/chat/completions', userParts([{ type: 'image_url', image_url: { url: `data:image/png;base64,${hugePng().toString('base64')}` } }]), 400],
    ['10 minutes of audio', '/v1/chat/completions', userParts([{ type: 'input_audio', input_audio: { data: longWav().toString('base64'), format: 'wav' } }]), 400],
    ['oversized body', '/v1/chat/completions', { ...ok, messages: [{ role: 'user', content: 'x'.repeat(9 << 20) }] }, 413],
    ['missing API key', '/v1/chat/completions', ok, 401, { auth: '' }],
    ['wrong API key', '/v1/chat/completions', ok, 401, { auth: 'sekret-kez' }],
    ['ollama: invalid JSON', '/api/chat', '{', 400, { raw: true }],
    ['ollama: unknown model', '/api/chat', { model: 'nope', messages: [{ role: 'user', content: 'x' }] }, 404],
    ['ollama: broken base64 image', '/api/generate', { model: 'tiny', prompt: 'x', images: ['@@'], stream: false }, 400],
    ['ollama: wrong API key', '/api/tags', undefined, 401, { auth: 'no' }],
  ];
  for (const [name, path, body, status, opts = {}] of cases) {
    const r = path === '/api/tags'
      ? await fetch(server.url + path, { headers: { authorization: `Bearer ${opts.auth}` } }).then(async (x) => ({ status: x.status, json: await x.json() }))
      : await post(path, body, opts);
    assert.equal(r.status, status, `${name}: ${r.text}`);
    assert.ok(r.json && r.json.error, `${name}: JSON error expected, got ${r.text}`);
    if (path.startsWith('/v1/')) assert.equal(typeof r.json.error.message, 'string', name);
    else assert.equal(typeof r.json.error, 'string', name);
  }
  // Unknown route and /health without a key.
  const missing = await fetch(`${server.url}/v1/nothing`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(missing.status, 404);
  assert.ok((await missing.json()).error);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  // Still serving.
  const good = await post('/v1/chat/completions', ok);
  assert.equal(good.status, 200, good.text);
  const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${key}` } }).then((x) => x.text());
  assert.match(metrics, /unigemma_requests_total\{route="\/v1\/chat\/completions",status="400"\} \d+/);
  assert.match(metrics, /unigemma_time_to_first_token_seconds_bucket/);
});
