// The official `ollama` client against `unigemma serve`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ollama } from 'ollama';
import { startServer, haveOracle, oracle, textModel, mmModel, mmproj } from './harness.js';

const skip = haveOracle() ? false : 'oracle pack or UG_CLI not available';
let server;
let ollama;

before(async () => {
  if (skip) return;
  server = await startServer(['-m', textModel, '--parallel', '2', '--alias', 'tiny']);
  ollama = new Ollama({ host: server.url });
});
after(async () => { if (server) assert.equal(await server.stop(), 0); });

const options = { temperature: 0, num_predict: 10 };

test('tags, show, ps, version', { skip }, async () => {
  const tags = await ollama.list();
  assert.equal(tags.models[0].name, 'tiny:latest');
  const show = await ollama.show({ model: 'tiny' });
  assert.ok(show.capabilities.includes('tools'));
  assert.ok(show.template.length > 0);
  const ps = await ollama.ps();
  assert.equal(ps.models.length, 1);
  const v = await ollama.version();
  assert.match(v.version, /^\d+\.\d+\.\d+$/);
  await assert.rejects(ollama.show({ model: 'nope' }), (e) => e.status_code === 404);
});

test('chat, non-streaming and streaming agree', { skip }, async () => {
  const messages = [{ role: 'user', content: 'Why is the sky blue?' }];
  const r = await ollama.chat({ model: 'tiny', messages, options, stream: false });
  assert.equal(r.message.role, 'assistant');
  assert.equal(r.done, true);
  assert.ok(['stop', 'length'].includes(r.done_reason));
  assert.ok(r.prompt_eval_count > 5);
  assert.ok(r.eval_count <= 10);
  let text = '';
  let last;
  for await (const part of await ollama.chat({ model: 'tiny', messages, options, stream: true })) {
    text += part.message.content;
    last = part;
  }
  assert.equal(text, r.message.content);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, r.eval_count);
});

test('generate, templated, raw and streaming', { skip }, async () => {
  const r = await ollama.generate({ model: 'tiny', prompt: 'Hello', options, stream: false });
  assert.equal(r.done, true);
  assert.equal(typeof r.response, 'string');
  let text = '';
  for await (const part of await ollama.generate({ model: 'tiny', prompt: 'Hello', options, stream: true })) {
    text += part.response;
  }
  assert.equal(text, r.response);
  const raw = await ollama.generate({ model: 'tiny', prompt: 'Hello', raw: true, options, stream: false });
  assert.ok(raw.prompt_eval_count < r.prompt_eval_count);  // no chat template around it
});

test('format json, think and tools are accepted', { skip }, async () => {
  const r = await ollama.chat({
    model: 'tiny', messages: [{ role: 'user', content: 'JSON please' }], format: 'json',
    options: { temperature: 0.7, seed: 3, num_predict: 150 }, stream: false,
  });
  assert.equal(r.message.content[0], '{');
  if (r.done_reason === 'stop') JSON.parse(r.message.content);
  // A schema object as format: enforced, not just the top-level type.
  const format = {
    type: 'object',
    properties: { city: { type: 'string', maxLength: 10 }, days: { type: 'array', items: { enum: ['mon', 'tue'] }, maxItems: 2 } },
    required: ['city', 'days'], additionalProperties: false,
  };
  for (const seed of [4, 5]) {
    const s = await ollama.chat({
      model: 'tiny', messages: [{ role: 'user', content: 'JSON please' }], format,
      options: { temperature: 0.9, seed, num_predict: 100 }, stream: false,
    });
    const v = JSON.parse(s.message.content);
    assert.deepEqual(Object.keys(v).sort(), ['city', 'days']);
    assert.equal(typeof v.city, 'string');
    assert.ok(v.days.length <= 2 && v.days.every((d) => d === 'mon' || d === 'tue'));
  }
  const t = await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'hm' }], think: true, options, stream: false });
  assert.equal(t.done, true);
  const tools = [{ type: 'function', function: { name: 'add', description: 'adds', parameters: { type: 'object', properties: { a: { type: 'number' } } } } }];
  const withTools = await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'hm' }], tools, options, stream: false });
  assert.ok(withTools.prompt_eval_count > t.prompt_eval_count);
  const round = await ollama.chat({
    model: 'tiny', tools, options, stream: false,
    messages: [
      { role: 'user', content: 'add 1' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'add', arguments: { a: 1 } } }] },
      { role: 'tool', content: '2', tool_name: 'add' },
    ],
  });
  assert.equal(round.done, true);
});

test('images (tiny-a with its projector), chat and generate', { skip }, async () => {
  const mm = await startServer(['-m', mmModel, '--mmproj', mmproj, '--image-tokens', '70', '--alias', 'mm']);
  try {
    const o = new Ollama({ host: mm.url });
    const png = readFileSync(`${oracle}/vision/images/chelsea.png`).toString('base64');
    const c = await o.chat({ model: 'mm', messages: [{ role: 'user', content: 'What?', images: [png] }], options, stream: false });
    assert.ok(c.prompt_eval_count > 64);
    const g = await o.generate({ model: 'mm', prompt: 'Describe', images: [png], options, stream: false });
    assert.ok(g.prompt_eval_count > 64);
    await assert.rejects(o.chat({ model: 'mm', messages: [{ role: 'user', content: 'x', images: ['%%%'] }], stream: false }),
      (e) => e.status_code === 400);
  } finally {
    assert.equal(await mm.stop(), 0);
  }
});
