// berth serve driven by the official MCP TypeScript SDK client over its
// StdioClientTransport: the seed tools against the real Docker engine
// (streamed progress, cancellation that removes the container, concurrency)
// and the conformance fixtures (content types, progress, logging, errors).
import { after, before, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';

import {
  CONFORMANCE_TOOLS,
  SEED_TOOLS,
  TEST_IMAGE,
  conformancePluginDir,
  containersWith,
  importClient,
  instanceFromStderr,
  killAll,
  removeContainers,
  serverCommand,
  slow,
  sleep,
  track,
  valgrind,
  waitNoContainers,
} from './lib.mjs';

const { Client } = await importClient('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = await importClient('@modelcontextprotocol/sdk/client/stdio.js');
const { LoggingMessageNotificationSchema, McpError } = await importClient(
  '@modelcontextprotocol/sdk/types.js',
);

const test = (name, fn) => nodeTest(name, { timeout: 180000 * slow }, fn);
const plugins = conformancePluginDir();
const instances = [];

/** Connect an SDK client to a fresh `berth serve` (seed plugins + conformance). */
async function connect(extraEnv = {}) {
  const { command, args, env } = serverCommand(['--plugin-dir', plugins.dir], extraEnv);
  const transport = new StdioClientTransport({ command, args, env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr.setEncoding('utf8');
  transport.stderr.on('data', (d) => {
    stderr += d;
  });
  const client = new Client({ name: 'berth-sdk-test', version: '1.0.0' });
  const logs = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(n.params);
  });
  await client.connect(transport, { timeout: 60000 * slow });
  // Keep every notification as it came off the wire, before the SDK's
  // dispatch (which can drop a progress notification that arrives in the same
  // read as its response: typescript-sdk issue #2580).
  const wire = [];
  const dispatch = transport.onmessage;
  transport.onmessage = (m, extra) => {
    if (m.method) wire.push(m);
    dispatch(m, extra);
  };
  const proc = transport._process;
  track(proc);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const session = {
    client,
    logs,
    wire,
    stderr: () => stderr,
    instance: null,
    async close() {
      await client.close();
      const r = await exited;
      assert.equal(r.code, 0, `berth serve exited with ${r.code}/${r.signal} (97: valgrind errors)\n${stderr}`);
    },
  };
  const deadline = Date.now() + 10000 * slow;
  while (!instanceFromStderr(stderr) && Date.now() < deadline) await sleep(20);
  session.instance = instanceFromStderr(stderr);
  assert.ok(session.instance, `no instance id in the server's stderr:\n${stderr}`);
  instances.push(session.instance);
  return session;
}

let s;
before(async () => {
  s = await connect();
});
after(async () => {
  try {
    if (s) await s.close();
  } finally {
    for (const id of instances) removeContainers(id);
    killAll();
    plugins.remove();
  }
});

test('initialize: server info, capabilities and instructions', async () => {
  const info = s.client.getServerVersion();
  assert.equal(info.name, 'berth');
  assert.equal(typeof info.version, 'string');
  const caps = s.client.getServerCapabilities();
  assert.ok(caps.tools, JSON.stringify(caps));
  assert.ok(caps.logging, JSON.stringify(caps));
  assert.match(s.client.getInstructions(), /Docker/);
  assert.deepEqual(await s.client.ping(), {});
});

test('listTools: the six seed tools with schemas and annotations, and the fixtures', async () => {
  const { tools, nextCursor } = await s.client.listTools();
  assert.equal(nextCursor, undefined);
  const byName = new Map(tools.map((t) => [t.name, t]));
  for (const name of [...SEED_TOOLS, ...CONFORMANCE_TOOLS]) {
    assert.ok(byName.has(name), `tool ${name} missing; have ${[...byName.keys()].join(', ')}`);
  }
  for (const name of SEED_TOOLS) {
    const t = byName.get(name);
    assert.ok(t.description.length > 20, `${name}: description too short`);
    assert.equal(t.inputSchema.type, 'object', name);
    assert.equal(typeof t.inputSchema.properties, 'object', name);
    assert.equal(typeof t.annotations, 'object', `${name}: no annotations`);
    assert.equal(typeof t.annotations.readOnlyHint, 'boolean', `${name}: readOnlyHint`);
    assert.equal(t.outputSchema?.type, 'object', `${name}: outputSchema`);
  }
  const run = byName.get('execute_docker_container');
  assert.deepEqual(run.inputSchema.required, ['image']);
  assert.equal(run.annotations.readOnlyHint, false);
  assert.equal(byName.get('list_running_containers').annotations.readOnlyHint, true);
});

test('a container run streams each output line as progress before the result', async () => {
  const events = [];
  const t0 = Date.now();
  const result = await s.client.callTool(
    {
      name: 'execute_docker_container',
      arguments: {
        image: TEST_IMAGE,
        command: "sh -c 'for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done'",
      },
    },
    undefined,
    {
      timeout: 120000 * slow,
      onprogress: (p) => events.push({ ...p, at: Date.now() - t0 }),
    },
  );
  const done = Date.now() - t0;
  assert.equal(result.isError, false, JSON.stringify(result));
  assert.equal(result.structuredContent.exit_code, 0);
  assert.equal(result.structuredContent.stdout, 'line1\nline2\nline3\nline4\nline5\n');
  const text = events.map((e) => e.message ?? '').join('');
  for (let i = 1; i <= 5; i++) assert.ok(text.includes(`line${i}`), `line${i} not in progress: ${text}`);
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].progress > events[i - 1].progress, 'progress did not increase');
  }
  // Streamed, not batched at the end: the first line arrived while the
  // container still had four more lines (1.2 s) to print.
  const first = events.find((e) => (e.message ?? '').includes('line1'));
  assert.ok(events.length >= 3, `only ${events.length} progress notifications: ${JSON.stringify(events)}`);
  assert.ok(first.at < done - 600, `line1 came at ${first.at} ms, the result at ${done} ms`);
});

test('aborting a call cancels it: the container is killed and removed', async () => {
  const controller = new AbortController();
  const call = s.client.callTool(
    { name: 'execute_docker_container', arguments: { image: TEST_IMAGE, command: 'sleep 30' } },
    undefined,
    { signal: controller.signal, timeout: 120000 * slow },
  );
  const rejected = assert.rejects(call);
  // Abort once its container exists (so the check below can fail).
  const deadline = Date.now() + 20000 * slow;
  while (containersWith(`berth.instance=${s.instance}`).length === 0 && Date.now() < deadline) {
    await sleep(100);
  }
  assert.equal(containersWith(`berth.instance=${s.instance}`).length, 1, 'no container started');
  await sleep(1000);
  const t0 = Date.now();
  controller.abort('test abort');
  await rejected;
  const left = await waitNoContainers(s.instance, 20000 * slow);
  assert.deepEqual(left, [], 'the cancelled container was left behind');
  assert.ok(Date.now() - t0 < 20000 * slow);
  // The session goes on.
  assert.deepEqual(await s.client.ping(), {});
});

test('four one-second runs sent together overlap', async () => {
  // Concurrency, not speed: run in sequence they would take at least 4 s.
  const t0 = Date.now();
  const results = await Promise.all(
    [0, 1, 2, 3].map(() =>
      s.client.callTool(
        { name: 'execute_docker_container', arguments: { image: TEST_IMAGE, command: 'sleep 1' } },
        undefined,
        { timeout: 120000 * slow },
      ),
    ),
  );
  const elapsed = Date.now() - t0;
  for (const r of results) assert.equal(r.structuredContent.exit_code, 0, JSON.stringify(r));
  if (!valgrind) assert.ok(elapsed < 3500, `four 1 s runs took ${elapsed} ms: not concurrent`);
  assert.deepEqual(await waitNoContainers(s.instance, 10000), []);
});

test('conformance fixtures: content types and errors', async () => {
  let r = await s.client.callTool({ name: 'test_simple_text' });
  assert.deepEqual(r.content, [{ type: 'text', text: 'This is a simple text response for testing.' }]);

  r = await s.client.callTool({ name: 'test_image_content', arguments: {} });
  const img = r.content.find((c) => c.type === 'image');
  assert.equal(img.mimeType, 'image/png');
  assert.equal(Buffer.from(img.data, 'base64').subarray(1, 4).toString(), 'PNG');

  r = await s.client.callTool({ name: 'test_audio_content', arguments: {} });
  const audio = r.content.find((c) => c.type === 'audio');
  assert.equal(audio.mimeType, 'audio/wav');
  assert.equal(Buffer.from(audio.data, 'base64').subarray(0, 4).toString(), 'RIFF');

  r = await s.client.callTool({ name: 'test_embedded_resource', arguments: {} });
  assert.deepEqual(r.content[0].resource, {
    uri: 'test://embedded-resource',
    mimeType: 'text/plain',
    text: 'This is an embedded resource content.',
  });

  r = await s.client.callTool({ name: 'test_multiple_content_types', arguments: {} });
  assert.deepEqual(r.content.map((c) => c.type), ['text', 'image', 'resource']);
  assert.deepEqual(JSON.parse(r.content[2].resource.text), { test: 'data', value: 123 });

  r = await s.client.callTool({ name: 'test_error_handling', arguments: {} });
  assert.equal(r.isError, true);
  assert.equal(r.content[0].text, 'This tool intentionally returns an error for testing');

  // Unknown tool: a protocol error.
  await assert.rejects(s.client.callTool({ name: 'no_such_tool', arguments: {} }), (e) => {
    assert.ok(e instanceof McpError);
    assert.equal(e.code, -32602);
    return true;
  });
  // A schema violation (2025-11-25, SEP-1303): a tool error naming the field.
  r = await s.client.callTool({ name: 'test_echo', arguments: { text: 'x', count: 'two' } });
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /count/);
  // The seed tools validate too.
  r = await s.client.callTool({ name: 'execute_docker_container', arguments: { command: 'true' } });
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /image/);
});

test('conformance fixtures: progress and logging at the level the client sets', async () => {
  const progress = [];
  s.wire.length = 0;
  const r = await s.client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined, {
    onprogress: (p) => progress.push(p),
  });
  assert.equal(r.isError, false);
  const sent = s.wire.filter((m) => m.method === 'notifications/progress').map((m) => m.params);
  assert.deepEqual(sent.map((p) => [p.progress, p.total]), [[0, 100], [50, 100], [100, 100]]);
  assert.ok(sent.every((p) => p.progressToken === sent[0].progressToken));
  // The SDK hands the first two to onprogress; the third reaches it only when
  // it is read before the response (issue #2580, a client-side race).
  assert.deepEqual(progress.slice(0, 2).map((p) => [p.progress, p.total]), [[0, 100], [50, 100]]);

  await s.client.setLoggingLevel('debug');
  s.logs.length = 0;
  await s.client.callTool({ name: 'test_tool_with_logging', arguments: {} });
  assert.deepEqual(
    s.logs.map((l) => [l.level, l.logger, l.data]),
    [
      ['info', 'conformance', 'Tool execution started'],
      ['info', 'conformance', 'Tool processing data'],
      ['info', 'conformance', 'Tool execution completed'],
      ['debug', 'conformance', 'debug detail'],
    ],
  );
  await s.client.setLoggingLevel('warning');
  s.logs.length = 0;
  await s.client.callTool({ name: 'test_tool_with_logging', arguments: {} });
  assert.deepEqual(s.logs, []);
  await s.client.setLoggingLevel('info');
});

test('pagination through the SDK: every tool once over pages of two', async () => {
  const p = await connect({ BERTH_MCP_PAGE_SIZE: '2' });
  try {
    const names = [];
    let cursor;
    let pages = 0;
    do {
      const page = await p.client.listTools(cursor ? { cursor } : undefined);
      assert.ok(page.tools.length <= 2);
      names.push(...page.tools.map((t) => t.name));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    const all = (await s.client.listTools()).tools.map((t) => t.name);
    assert.deepEqual(names, all);
    assert.equal(pages, Math.ceil(all.length / 2));
    await assert.rejects(p.client.listTools({ cursor: 'not-a-cursor' }), (e) => e.code === -32602);
  } finally {
    await p.close();
  }
});
