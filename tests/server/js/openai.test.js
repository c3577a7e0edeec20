// The official `openai` client against `unigemma serve` on the tiny real-vocabulary model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, haveOracle, dataUri, oracle, textModel, mmModel, mmproj } from './harness.js';

const skip = haveOracle() ? false : 'oracle pack or UG_CLI not available';
let server;
let client;

before(async () => {
  if (skip) return;
  server = await startServer(['-m', textModel, '--parallel', '4', '--alias', 'tiny']);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { if (server) assert.equal(await server.stop(), 0); });

const greedy = { model: 'tiny', temperature: 0, max_tokens: 12 };
const hello = [{ role: 'user', content: 'Say hello.' }];

test('models list the served model', { skip }, async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['tiny']);
});

test('chat completion, non-streaming', { skip }, async () => {
  const r = await client.chat.completions.create({ ...greedy, messages: hello });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 5);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 12);
});

test('streaming gives the same greedy text, then usage', { skip }, async () => {
  const whole = await client.chat.completions.create({ ...greedy, messages: hello });
  const stream = await client.chat.completions.create({
    ...greedy, messages: hello, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 3);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(usage.completion_tokens, whole.usage.completion_tokens);
});

test('prompt cache: a repeated prefix is reused', { skip }, async () => {
  const messages = [{ role: 'system', content: 'You are a terse assistant. '.repeat(20) }, ...hello];
  await client.chat.completions.create({ ...greedy, messages });
  const again = await client.chat.completions.create({
    ...greedy, messages: [...messages, { role: 'assistant', content: 'Hi.' }, { role: 'user', content: 'More.' }],
  });
  assert.ok(again.usage.prompt_tokens_details.cached_tokens > 100);
});

test('seeded sampling is reproducible; stop strings cut the text', { skip }, async () => {
  const req = { model: 'tiny', messages: hello, temperature: 1, top_p: 0.9, top_k: 40, min_p: 0.01, seed: 42, max_tokens: 16 };
  const a = await client.chat.completions.create(req);
  const b = await client.chat.completions.create(req);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const text = a.choices[0].message.content;
  if (text.length > 4) {
    const stop = text.slice(2, 4);
    const c = await client.chat.completions.create({ ...req, stop: [stop] });
    assert.equal(c.choices[0].message.content, text.slice(0, text.indexOf(stop)));
    assert.equal(c.choices[0].finish_reason, 'stop');
  }
});

test('tools: declarations, tool_calls history and tool results are accepted', { skip }, async () => {
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather', description: 'Weather of a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  }];
  const base = await client.chat.completions.create({ ...greedy, messages: hello });
  const withTools = await client.chat.completions.create({ ...greedy, messages: hello, tools, tool_choice: 'auto' });
  assert.ok(withTools.usage.prompt_tokens > base.usage.prompt_tokens + 10);  // declarations rendered
  const round = await client.chat.completions.create({
    ...greedy, tools,
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"clear","celsius":21}' },
    ],
  });
  assert.ok(['stop', 'length', 'tool_calls'].includes(round.choices[0].finish_reason));
  for (const call of round.choices[0].message.tool_calls ?? []) JSON.parse(call.function.arguments);
  await assert.rejects(
    client.chat.completions.create({ ...greedy, messages: hello, tools, tool_choice: { type: 'function', function: { name: 'nope' } } }),
    (e) => e.status === 400);
});

test('tool_choice: required and named force a call of an offered function; none prevents calls', { skip }, async () => {
  const fn = (name) => ({ type: 'function', function: { name, parameters: { type: 'object', properties: { city: { type: 'string' } } } } });
  const tools = [fn('get_weather'), fn('get_time')];
  // The random model's arguments may not parse; then the raw call comes back as content. Either
  // way the reply starts with a native call of an offered function.
  const calledName = (r) => {
    const m = r.choices[0].message;
    if (m.tool_calls?.length) {
      assert.equal(r.choices[0].finish_reason, 'tool_calls');
      return m.tool_calls[0].function.name;
    }
    return m.content.match(/^<\|tool_call>call:([a-z_]+)\{/)?.[1];
  };
  for (const seed of [1, 2]) {
    const req = { model: 'tiny', messages: hello, tools, seed, temperature: 0.8, max_tokens: 24 };
    const required = await client.chat.completions.create({ ...req, tool_choice: 'required' });
    assert.ok(['get_weather', 'get_time'].includes(calledName(required)), JSON.stringify(required.choices[0]));
    const named = await client.chat.completions.create({ ...req, tool_choice: { type: 'function', function: { name: 'get_time' } } });
    assert.equal(calledName(named), 'get_time', JSON.stringify(named.choices[0]));
    const stream = await client.chat.completions.create({ ...req, tool_choice: { type: 'function', function: { name: 'get_time' } }, stream: true });
    let streamed = '';
    const streamedCalls = [];
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta?.content ?? '';
      for (const c of chunk.choices[0]?.delta?.tool_calls ?? []) streamedCalls.push(c.function.name);
    }
    assert.ok(streamedCalls[0] === 'get_time' || streamed.startsWith('<|tool_call>call:get_time{'), streamed);
    const none = await client.chat.completions.create({ ...req, tool_choice: 'none' });
    assert.equal(none.choices[0].message.tool_calls, undefined);
    assert.ok(!(none.choices[0].message.content ?? '').includes('<|tool_call>'));
  }
  const noTools = await client.chat.completions.create({ model: 'tiny', messages: hello, tool_choice: 'required' }).catch((e) => e);
  assert.equal(noTools.status, 400);
});

test('a non-streaming client that disconnects cancels its generation', { skip }, async () => {
  const metric = async (name) => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))[1]);
  };
  const cancelledBefore = await metric('unigemma_generations_cancelled_total');
  const controller = new AbortController();
  const pending = fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST', signal: controller.signal, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', messages: hello, max_tokens: 100000, ignore_eos: true, temperature: 0 }),
  }).catch((e) => e);
  // Abort once it is generating.
  for (let i = 0; i < 200 && (await metric('unigemma_active_sequences')) === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  controller.abort();
  assert.equal((await pending).name, 'AbortError');
  // The generation ends as cancelled (not at its token limit) and its sequence is free again.
  let cancelled = cancelledBefore;
  for (let i = 0; i < 500 && cancelled === cancelledBefore; i++) {
    await new Promise((r) => setTimeout(r, 20));
    cancelled = await metric('unigemma_generations_cancelled_total');
  }
  assert.equal(cancelled, cancelledBefore + 1);
  assert.equal(await metric('unigemma_active_sequences'), 0);
  const after = await client.chat.completions.create({ ...greedy, messages: hello });
  assert.equal(after.choices[0].message.role, 'assistant');
});

test('reasoning_effort turns thinking on (streams reasoning_content deltas when the model thinks)', { skip }, async () => {
  const off = await client.chat.completions.create({ ...greedy, messages: hello });
  const on = await client.chat.completions.create({ ...greedy, messages: hello, reasoning_effort: 'high' });
  assert.ok(on.usage.prompt_tokens > off.usage.prompt_tokens);  // <|think|> in the system turn
  const kw = await client.chat.completions.create({ ...greedy, messages: hello, chat_template_kwargs: { enable_thinking: true } });
  assert.equal(kw.usage.prompt_tokens, on.usage.prompt_tokens);
  const stream = await client.chat.completions.create({ ...greedy, messages: hello, reasoning_effort: 'high', stream: true });
  let reasoning = '';
  let content = '';
  for await (const chunk of stream) {
    reasoning += chunk.choices[0]?.delta?.reasoning_content ?? '';
    content += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(content, on.choices[0].message.content ?? '');
  assert.equal(reasoning, on.choices[0].message.reasoning_content ?? '');
});

test('json_object gives a JSON object', { skip }, async () => {
  for (const seed of [1, 2]) {
    const r = await client.chat.completions.create({
      model: 'tiny', messages: hello, response_format: { type: 'json_object' }, seed, temperature: 0.8, max_tokens: 200,
    });
    const { content } = r.choices[0].message;
    assert.equal(content[0], '{');
    if (r.choices[0].finish_reason === 'stop') assert.equal(typeof JSON.parse(content), 'object');
  }
});

// A validator independent of the server's: what the schema below demands.
function checkPerson(v) {
  assert.equal(typeof v, 'object');
  assert.deepEqual(Object.keys(v).sort(), ['address', 'age', 'kind', 'name', 'scores']);  // strict
  assert.equal(typeof v.name, 'string');
  assert.ok(Number.isInteger(v.age));
  assert.ok(['cat', 'dog', null].includes(v.kind));
  assert.ok(Array.isArray(v.scores) && v.scores.length >= 1 && v.scores.length <= 3);
  for (const x of v.scores) assert.equal(typeof x, 'number');
  assert.deepEqual(Object.keys(v.address).sort(), ['city', 'zip']);
  assert.equal(typeof v.address.city, 'string');
  assert.ok(v.address.zip === null || typeof v.address.zip === 'string');
}
const personSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'full name', maxLength: 20 },
    age: { type: 'integer' },
    kind: { enum: ['cat', 'dog', null] },
    scores: { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 3 },
    address: { $ref: '#/$defs/address' },
  },
  required: ['name', 'age', 'kind', 'scores', 'address'],
  additionalProperties: false,
  $defs: {
    address: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, zip: { anyOf: [{ type: 'string', maxLength: 6 }, { type: 'null' }] } },
      required: ['city', 'zip'], additionalProperties: false,
    },
  },
};

test('json_schema: output of the random model parses and validates (strict, nested, $ref, anyOf, enum)', { skip }, async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({
      model: 'tiny', messages: hello, seed, temperature: 0.9, max_tokens: 160,
      response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema: personSchema } },
    });
    checkPerson(JSON.parse(r.choices[0].message.content));
  }
  // Keywords it cannot enforce are refused, by name.
  const bad = await client.chat.completions.create({
    model: 'tiny', messages: hello, max_tokens: 5,
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { s: { type: 'string', pattern: '^a' } } } } },
  }).catch((e) => e);
  assert.equal(bad.status, 400);
  assert.match(bad.error.message, /'pattern' is not supported at \/properties\/s/);
});

test('completions endpoint', { skip }, async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.usage.completion_tokens <= 8, true);
  const stream = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 8, temperature: 0, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
});

test('8 parallel greedy requests equal the same requests one by one', { skip }, async () => {
  const prompts = ['a', 'bb', 'one two', 'the cat', 'x y z', 'hello there', '12345', 'why?'];
  const req = (p) => client.chat.completions.create({ model: 'tiny', temperature: 0, max_tokens: 10, messages: [{ role: 'user', content: p }] });
  const alone = [];
  for (const p of prompts) alone.push((await req(p)).choices[0].message.content);
  const together = await Promise.all(prompts.map(req));
  assert.deepEqual(together.map((r) => r.choices[0].message.content), alone);
});

test('MTP drafter (--draft): greedy output equals plain decoding; acceptance in /metrics', { skip }, async () => {
  const drafter = `${oracle}/mtp/models/gemma4-tiny-a-assistant-echo-f32.gguf`;
  const plain = await startServer(['-m', mmModel, '--alias', 'a', '--draft', 'none']);
  const spec = await startServer(['-m', mmModel, '--alias', 'a', '--draft', drafter, '--draft-adaptive', 'off', '--draft-max', '3']);
  try {
    const clients = [plain, spec].map((s) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 }));
    for (const content of ['hi', 'one two three', 'the the the the']) {
      const req = { model: 'a', temperature: 0, max_tokens: 32, messages: [{ role: 'user', content }] };
      const [a, b] = await Promise.all(clients.map((c) => c.chat.completions.create(req)));
      assert.equal(b.choices[0].message.content, a.choices[0].message.content);
      assert.equal(b.usage.completion_tokens, a.usage.completion_tokens);
      const stream = await clients[1].chat.completions.create({ ...req, stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      assert.equal(text, a.choices[0].message.content);
    }
    const metrics = await (await fetch(`${spec.url}/metrics`)).text();
    const value = (name) => Number(metrics.match(new RegExp(`^${name} (\\S+)$`, 'm'))[1]);
    assert.ok(value('unigemma_mtp_drafted_tokens_total') > 0);
    assert.ok(value('unigemma_mtp_accepted_tokens_total') > 0);
    const rate = value('unigemma_mtp_acceptance_rate');
    assert.ok(rate > 0 && rate <= 1);
    assert.ok(!(await (await fetch(`${plain.url}/metrics`)).text()).includes('unigemma_mtp_'));
  } finally {
    assert.equal(await plain.stop(), 0);
    assert.equal(await spec.stop(), 0);
  }
});

test('image and audio input (tiny-a with its projector)', { skip }, async () => {
  const mm = await startServer(['-m', mmModel, '--mmproj', mmproj, '--image-tokens', '70']);
  try {
    const c = new OpenAI({ baseURL: `${mm.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const text = await c.chat.completions.create({ ...greedy, model: 'x', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    assert.equal(text.status, 404);  // unknown model name
    const name = (await c.models.list()).data[0].id;
    const img = await c.chat.completions.create({
      ...greedy, model: name,
      messages: [{ role: 'user', content: [
        { type: 'text', text: 'What is this?' },
        { type: 'image_url', image_url: { url: dataUri(`${oracle}/vision/images/astronaut.png`, 'image/png') } },
      ] }],
    });
    assert.ok(img.usage.prompt_tokens > 64);  // the image's soft tokens
    const wav = (await import('node:fs')).readFileSync(`${oracle}/audio/files/espeak_fox_16k.wav`).toString('base64');
    const aud = await c.chat.completions.create({
      ...greedy, model: name,
      messages: [{ role: 'user', content: [
        { type: 'input_audio', input_audio: { data: wav, format: 'wav' } },
        { type: 'text', text: 'Transcribe.' },
      ] }],
      stream: false,
    });
    assert.ok(aud.usage.prompt_tokens > 25);  // 40 ms per audio token
  } finally {
    assert.equal(await mm.stop(), 0);
  }
});
