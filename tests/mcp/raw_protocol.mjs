// berth serve fed raw lines: malformed input, lifecycle errors, version
// negotiation, pagination, cancellation and EOF, checked message by message.
// The server must answer each with the right JSON-RPC code and keep serving.
// Uses only the conformance plugin, so no Docker engine is involved.
import { after, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { RawServer, conformancePluginDir, killAll, sleep, slow } from './lib.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 120000 * slow }, fn);
after(killAll);

const plugins = conformancePluginDir();
const scratch = mkdtempSync(join(tmpdir(), 'berth-mcp-raw-'));
process.on('exit', () => {
  plugins.remove();
  rmSync(scratch, { recursive: true, force: true });
});

/** Start a server on the conformance plugin only. */
function start(env = {}) {
  return new RawServer(['--plugin-dir', plugins.dir], { BERTH_PLUGIN_PATH: '', ...env });
}

function errorOf(msg) {
  assert.ok(msg.error, `expected an error, got ${JSON.stringify(msg)}`);
  return msg.error;
}

/** Check the server is still answering, and return after its pong. */
async function pingOk(s, id) {
  const r = await s.request(id, 'ping');
  assert.deepEqual(r.result, {});
}

async function finish(s) {
  const r = await s.close();
  assert.equal(s.badLines.length, 0, `non-JSON lines on stdout: ${s.badLines.join('\n')}`);
  assert.equal(r.code, 0, `exit status ${r.code} (97: valgrind errors); stderr:\n${s.stderr}`);
}

test('lifecycle: ping and errors before initialize, negotiation, double initialize', async () => {
  const s = start();
  await pingOk(s, 'p0');
  const early = await s.request(1, 'tools/list');
  assert.equal(errorOf(early).code, -32600);
  assert.match(early.error.message, /not initialized/);
  const early2 = await s.request(2, 'tools/call', { name: 'test_simple_text' });
  assert.equal(errorOf(early2).code, -32600);

  // An unknown revision: the server answers with its latest.
  const init = await s.request('i', 'initialize', {
    protocolVersion: '1999-01-01',
    capabilities: {},
    clientInfo: { name: 'raw', version: '1' },
  });
  const r = init.result;
  assert.equal(r.protocolVersion, '2025-11-25');
  assert.deepEqual(r.capabilities, { tools: { listChanged: false }, logging: {} });
  assert.equal(r.serverInfo.name, 'berth');
  assert.equal(typeof r.serverInfo.version, 'string');
  assert.equal(typeof r.serverInfo.title, 'string');
  assert.equal(typeof r.instructions, 'string');
  s.send({ jsonrpc: '2.0', method: 'notifications/initialized' });

  const again = await s.request('i2', 'initialize', {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'raw', version: '1' },
  });
  assert.equal(errorOf(again).code, -32600);
  await pingOk(s, 'p1');
  await finish(s);
});

test('each supported revision is accepted as asked; initialize without a version is -32602', async () => {
  for (const v of ['2025-11-25', '2025-06-18', '2025-03-26']) {
    const s = start();
    const init = await s.initialize(v);
    assert.equal(init.result.protocolVersion, v);
    await finish(s);
  }
  const s = start();
  const bad = await s.request(1, 'initialize', { capabilities: {} });
  assert.equal(errorOf(bad).code, -32602);
  await finish(s);
});

test('malformed messages get the right code and the server keeps serving', async () => {
  const s = start();
  await s.initialize();
  const before = () => s.messages.length;

  // Invalid JSON: -32700 with id null.
  let n = before();
  s.sendLine('{"jsonrpc": "2.0", "id": 5, "method": ');
  let m = await s.until((ms) => ms.length > n && ms[n], 'the parse error');
  assert.equal(errorOf(m).code, -32700);
  assert.equal(m.id, null);
  await pingOk(s, 'a');

  // A batch: -32600 (batches were removed in 2025-06-18).
  n = before();
  s.send([{ jsonrpc: '2.0', id: 6, method: 'ping' }]);
  m = await s.until((ms) => ms.length > n && ms[n], 'the batch error');
  assert.equal(errorOf(m).code, -32600);
  assert.equal(m.id, null);
  assert.ok(!s.messages.some((x) => x.id === 6), 'a request inside a batch was answered');
  await pingOk(s, 'b');

  // Not an object.
  n = before();
  s.sendLine('42');
  m = await s.until((ms) => ms.length > n && ms[n], 'the non-object error');
  assert.equal(errorOf(m).code, -32600);

  // Unknown method: -32601 with the id.
  m = await s.request(7, 'resources/list');
  assert.equal(errorOf(m).code, -32601);

  // jsonrpc missing or wrong: -32600, id kept.
  s.send({ id: 8, method: 'ping' });
  m = await s.response(8);
  assert.equal(errorOf(m).code, -32600);
  s.send({ jsonrpc: '1.0', id: 9, method: 'ping' });
  m = await s.response(9);
  assert.equal(errorOf(m).code, -32600);

  // Ids MCP forbids: null, boolean, fractional.
  for (const id of [null, true, 1.5]) {
    n = before();
    s.send({ jsonrpc: '2.0', id, method: 'ping' });
    m = await s.until((ms) => ms.length > n && ms[n], `the error for id ${id}`);
    assert.equal(errorOf(m).code, -32600);
    assert.equal(m.id, null);
  }

  // params that is not an object.
  m = await s.request(10, 'tools/list', [1, 2]);
  assert.equal(errorOf(m).code, -32602);

  // Deep nesting: rejected before parsing.
  n = before();
  s.sendLine('{"jsonrpc":"2.0","id":11,"method":"ping","params":{"a":' + '['.repeat(5000) +
    ']'.repeat(5000) + '}}');
  m = await s.until((ms) => ms.length > n && ms[n], 'the nesting error');
  assert.equal(errorOf(m).code, -32700);
  assert.match(m.error.message, /deeper/);

  // Duplicate keys make a message ambiguous.
  n = before();
  s.sendLine('{"jsonrpc":"2.0","id":12,"id":13,"method":"ping"}');
  m = await s.until((ms) => ms.length > n && ms[n], 'the duplicate-key error');
  assert.equal(errorOf(m).code, -32700);

  // A response from the client and unknown notifications: ignored, no output.
  n = before();
  s.send({ jsonrpc: '2.0', id: 'x', result: {} });
  s.send({ jsonrpc: '2.0', id: 'y', error: { code: 1, message: 'no' } });
  s.send({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
  s.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'nope' } });
  s.sendLine('   ');
  s.sendLine('');
  await pingOk(s, 'c');
  assert.equal(s.messages.length, n + 1, JSON.stringify(s.messages.slice(n)));

  // CRLF line endings are fine.
  s.sendLine('{"jsonrpc":"2.0","id":"crlf","method":"ping"}\r');
  m = await s.response('crlf');
  assert.deepEqual(m.result, {});

  // Invalid UTF-8 inside a string: a parse error, still serving.
  n = before();
  s.proc.stdin.write(Buffer.from([...Buffer.from('{"jsonrpc":"2.0","id":"u","method":"'),
    0xff, 0xfe, ...Buffer.from('"}\n')]));
  m = await s.until((ms) => ms.length > n && ms[n], 'the UTF-8 error');
  assert.equal(errorOf(m).code, -32700);
  await pingOk(s, 'd');
  await finish(s);
});

test('a line over the size limit is refused and skipped without stopping the server', async () => {
  const s = start({ BERTH_MCP_MAX_MESSAGE: String(1 << 20) });
  await s.initialize();
  const n = s.messages.length;
  // 3 MiB in several writes, then a request on the same write as the end.
  const filler = 'x'.repeat(1 << 20);
  s.proc.stdin.write('{"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":"');
  for (let i = 0; i < 3; i++) s.proc.stdin.write(filler);
  s.proc.stdin.write('"}}\n{"jsonrpc":"2.0","id":"after","method":"ping"}\n');
  const m = await s.until((ms) => ms.length > n && ms[n], 'the size error', 20000);
  assert.equal(errorOf(m).code, -32600);
  assert.equal(m.id, null);
  assert.match(m.error.message, /1048576/);
  const after = await s.response('after');
  assert.deepEqual(after.result, {});
  assert.ok(!s.messages.some((x) => x.id === 'big'));
  await finish(s);
});

test('the default limit is 4 MiB: a 5 MiB line is refused, a 3 MiB one is served', async () => {
  const s = start();
  await s.initialize();
  const pad = (n) => 'y'.repeat(n);
  s.sendLine(JSON.stringify({ jsonrpc: '2.0', id: 'ok3', method: 'ping', params: { pad: pad(3 << 20) } }));
  assert.deepEqual((await s.response('ok3', 20000)).result, {});
  const n = s.messages.length;
  s.sendLine(JSON.stringify({ jsonrpc: '2.0', id: 'no5', method: 'ping', params: { pad: pad(5 << 20) } }));
  const m = await s.until((ms) => ms.length > n && ms[n], 'the size error', 20000);
  assert.equal(errorOf(m).code, -32600);
  await pingOk(s, 'e');
  await finish(s);
});

test('tools/list pages with an opaque cursor; a bad cursor is -32602', async () => {
  const s = start({ BERTH_MCP_PAGE_SIZE: '3' });
  await s.initialize();
  const names = [];
  let cursor;
  let pages = 0;
  do {
    const r = await s.request(`l${pages}`, 'tools/list', cursor ? { cursor } : {});
    assert.ok(r.result, JSON.stringify(r));
    assert.ok(r.result.tools.length <= 3);
    for (const t of r.result.tools) {
      names.push(t.name);
      assert.equal(typeof t.description, 'string');
      assert.equal(t.inputSchema.type, 'object');
    }
    cursor = r.result.nextCursor;
    pages++;
  } while (cursor && pages < 20);
  assert.equal(names.length, 12);
  assert.equal(new Set(names).size, names.length);
  assert.ok(pages >= 4);
  assert.ok(names.includes('test_simple_text'));

  for (const bad of ['garbage', 'YmVydGgtdG9vbHM6OTk5', '', 7]) {
    const r = await s.request(`bad-${bad}`, 'tools/list', { cursor: bad });
    assert.equal(errorOf(r).code, -32602, `cursor ${JSON.stringify(bad)}`);
  }
  // The tool objects carry what the registry says.
  const all = start();
  await all.initialize();
  const r = await all.request('all', 'tools/list');
  assert.equal(r.result.nextCursor, undefined);
  const sleepTool = r.result.tools.find((t) => t.name === 'test_sleep');
  assert.equal(sleepTool.title, 'Sleep');
  assert.equal(sleepTool.outputSchema.type, 'object');
  assert.equal(sleepTool.annotations.readOnlyHint, true);
  assert.equal(sleepTool.annotations.idempotentHint, true);
  assert.deepEqual(sleepTool.inputSchema.required, ['seconds']);
  await finish(all);
  await finish(s);
});

test('tools/call errors: unknown tool, bad params, schema violations by revision', async () => {
  const s = start();
  await s.initialize('2025-11-25');
  let m = await s.request(1, 'tools/call', { name: 'no_such_tool', arguments: {} });
  assert.equal(errorOf(m).code, -32602);
  assert.match(m.error.message, /no_such_tool/);
  m = await s.request(2, 'tools/call', { arguments: {} });
  assert.equal(errorOf(m).code, -32602);
  m = await s.request(3, 'tools/call', { name: 'test_echo', arguments: 'text' });
  assert.equal(errorOf(m).code, -32602);
  // 2025-11-25 (SEP-1303): a schema violation is a tool execution error
  // naming the field, so a model can correct its call.
  m = await s.request(4, 'tools/call', { name: 'test_echo', arguments: { text: 5, count: 1 } });
  assert.equal(m.result.isError, true, JSON.stringify(m));
  assert.match(m.result.content[0].text, /text/);
  m = await s.request(5, 'tools/call', { name: 'test_echo', arguments: { text: 'hi', count: 2 } });
  assert.equal(m.result.isError, false);
  assert.deepEqual(m.result.structuredContent, { success: true, text: 'hi', count: 2 });
  // isError from a failing handler.
  m = await s.request(6, 'tools/call', { name: 'test_error_handling' });
  assert.equal(m.result.isError, true);
  assert.match(m.result.content[0].text, /intentionally/);
  // logging/setLevel with a bad level.
  m = await s.request(7, 'logging/setLevel', { level: 'loud' });
  assert.equal(errorOf(m).code, -32602);
  m = await s.request(8, 'logging/setLevel', { level: 'warning' });
  assert.deepEqual(m.result, {});
  await finish(s);

  // Older revisions: a schema violation is -32602 naming the field.
  const old = start();
  await old.initialize('2025-06-18');
  m = await old.request(1, 'tools/call', { name: 'test_echo', arguments: { text: 'a', count: 0 } });
  assert.equal(errorOf(m).code, -32602);
  assert.match(m.error.message, /count/);
  await finish(old);

  // 2025-03-26 knows no outputSchema, top-level title or structuredContent.
  const v3 = start();
  await v3.initialize('2025-03-26');
  const list = await v3.request('l', 'tools/list');
  const t = list.result.tools.find((x) => x.name === 'test_sleep');
  assert.equal(t.outputSchema, undefined);
  assert.equal(t.title, undefined);
  assert.equal(t.annotations.title, 'Sleep');
  m = await v3.request(2, 'tools/call', { name: 'test_echo', arguments: { text: 'a', count: 1 } });
  assert.equal(m.result.structuredContent, undefined);
  assert.match(m.result.content[0].text, /"text":"a"/);
  await finish(v3);
});

test('progress (integer token) and log notifications come before the response, in order', async () => {
  const s = start();
  await s.initialize();
  await s.request('lvl', 'logging/setLevel', { level: 'info' });
  s.send({ jsonrpc: '2.0', id: 'p', method: 'tools/call',
    params: { name: 'test_tool_with_progress', arguments: {}, _meta: { progressToken: 42 } } });
  s.send({ jsonrpc: '2.0', id: 'l', method: 'tools/call',
    params: { name: 'test_tool_with_logging', arguments: {} } });
  s.send({ jsonrpc: '2.0', id: 'u', method: 'tools/call',
    params: { name: 'test_unordered_progress', arguments: {}, _meta: { progressToken: 'u-tok' } } });
  await s.response('p');
  await s.response('l');
  await s.response('u');
  const idx = (id) => s.messages.findIndex((m) => m.id === id && m.result);

  const prog = s.messages
    .map((m, i) => ({ m, i }))
    .filter(({ m }) => m.method === 'notifications/progress' && m.params.progressToken === 42);
  assert.deepEqual(prog.map(({ m }) => [m.params.progress, m.params.total]), [[0, 100], [50, 100], [100, 100]]);
  assert.ok(prog.every(({ i }) => i < idx('p')));

  const logs = s.messages
    .map((m, i) => ({ m, i }))
    .filter(({ m }) => m.method === 'notifications/message');
  const texts = logs.map(({ m }) => m.params.data);
  assert.deepEqual(texts.filter((t) => t.startsWith('Tool ')),
    ['Tool execution started', 'Tool processing data', 'Tool execution completed']);
  assert.ok(!texts.includes('debug detail'), 'a debug line passed the info level');
  for (const { m, i } of logs.filter(({ m }) => m.params.data.startsWith('Tool '))) {
    assert.equal(m.params.level, 'info');
    assert.equal(m.params.logger, 'conformance');
    assert.ok(i < idx('l'));
  }

  // Whatever order the plugin reported in, what the client sees increases.
  const u = s.messages.filter((m) => m.method === 'notifications/progress' &&
    m.params.progressToken === 'u-tok');
  assert.ok(u.length >= 40, `only ${u.length} progress notifications`);
  for (let i = 1; i < u.length; i++) {
    assert.ok(u[i].params.progress > u[i - 1].params.progress,
      `progress went from ${u[i - 1].params.progress} to ${u[i].params.progress}`);
  }
  // No token, no progress.
  const before = s.messages.filter((m) => m.method === 'notifications/progress').length;
  await s.request('np', 'tools/call', { name: 'test_tool_with_progress', arguments: {} });
  assert.equal(s.messages.filter((m) => m.method === 'notifications/progress').length, before);
  await finish(s);
});

test('calls run concurrently; duplicate in-flight ids are refused; cancelled calls get no response', async () => {
  const s = start();
  await s.initialize();
  const marker = join(scratch, 'cancelled-marker');
  const t0 = Date.now();
  s.send({ jsonrpc: '2.0', id: 'long', method: 'tools/call',
    params: { name: 'test_sleep', arguments: { seconds: 30, marker } } });
  // The reader is not blocked by a running call: ping and list answer at once.
  await pingOk(s, 'during');
  const dup = await s.request('long', 'tools/call', { name: 'test_sleep', arguments: { seconds: 1 } });
  assert.equal(errorOf(dup).code, -32600);
  assert.match(dup.error.message, /in flight/);
  const answersToLong = () => s.messages.filter((m) => m.id === 'long').length;
  const longBefore = answersToLong();

  // Four one-second calls at once end together.
  const t1 = Date.now();
  for (let i = 0; i < 4; i++) {
    s.send({ jsonrpc: '2.0', id: `c${i}`, method: 'tools/call',
      params: { name: 'test_sleep', arguments: { seconds: 1 } } });
  }
  for (let i = 0; i < 4; i++) {
    const r = await s.response(`c${i}`);
    assert.equal(r.result.structuredContent.cancelled, false);
  }
  const elapsed = Date.now() - t1;
  assert.ok(elapsed < 3500 * slow, `four 1 s calls took ${elapsed} ms: not concurrent`);

  s.send({ jsonrpc: '2.0', method: 'notifications/cancelled',
    params: { requestId: 'long', reason: 'test' } });
  const deadline = Date.now() + 10000 * slow;
  while (!existsSync(marker) && Date.now() < deadline) await sleep(50);
  assert.equal(readFileSync(marker, 'utf8'), 'cancelled\n');
  assert.ok(Date.now() - t0 < 20000 * slow);
  // Let a response have a chance to arrive, then prove none did.
  await sleep(300);
  await pingOk(s, 'after-cancel');
  assert.equal(answersToLong(), longBefore, 'a cancelled call got a response');
  // The id is free again once the call is gone.
  const reuse = await s.request('long', 'tools/call', { name: 'test_sleep', arguments: { seconds: 0 } });
  assert.equal(reuse.result.isError, false);
  await finish(s);
});

test('EOF on stdin cancels calls in flight and exits promptly', async () => {
  const s = start();
  await s.initialize();
  const marker = join(scratch, 'eof-marker');
  s.send({ jsonrpc: '2.0', id: 'long', method: 'tools/call',
    params: { name: 'test_sleep', arguments: { seconds: 60, marker } } });
  await sleep(300);
  const r = await s.close(15000);
  assert.equal(r.code, 0, s.stderr);
  assert.ok(r.ms < 10000 * slow, `exit took ${r.ms} ms`);
  assert.equal(readFileSync(marker, 'utf8'), 'cancelled\n');
  assert.equal(s.badLines.length, 0);
});

test('SIGINT and SIGTERM while a call runs: cancelled, clean exit', async () => {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    const s = start();
    await s.initialize();
    const marker = join(scratch, `sig-${sig}`);
    s.send({ jsonrpc: '2.0', id: 'long', method: 'tools/call',
      params: { name: 'test_sleep', arguments: { seconds: 60, marker } } });
    await sleep(300 * slow);
    const t0 = Date.now();
    s.proc.kill(sig);
    const r = await s.waitExit(15000, t0);
    assert.equal(r.code, 0, `${sig}: status ${r.code} signal ${r.signal}\n${s.stderr}`);
    assert.ok(r.ms < 10000 * slow, `${sig}: exit took ${r.ms} ms`);
    assert.equal(readFileSync(marker, 'utf8'), 'cancelled\n');
    assert.match(s.stderr, new RegExp(`${sig}: cancelling 1 call`));
  }
});

test('more than 256 calls in flight: the next is refused with -32000, the others go on', async () => {
  const s = start();
  await s.initialize();
  for (let i = 0; i < 256; i++) {
    s.send({ jsonrpc: '2.0', id: `f${i}`, method: 'tools/call',
      params: { name: 'test_sleep', arguments: { seconds: 60 } } });
  }
  const busy = await s.request('one-too-many', 'tools/call',
    { name: 'test_sleep', arguments: { seconds: 0 } });
  assert.equal(errorOf(busy).code, -32000);
  assert.match(busy.error.message, /256/);
  await pingOk(s, 'still');
  // Cancelling one frees a place.
  s.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'f0' } });
  let ok = null;
  const deadline = Date.now() + 10000 * slow;
  while (!ok && Date.now() < deadline) {
    const r = await s.request('retry', 'tools/call', { name: 'test_sleep', arguments: { seconds: 0 } });
    if (r.result) ok = r;
    else await sleep(50);
  }
  assert.ok(ok, 'no place freed by the cancellation');
  const r = await s.close(30000);
  assert.equal(r.code, 0, s.stderr);
  assert.ok(r.ms < 15000 * slow, `exit with 255 calls took ${r.ms} ms`);
  // Each of the others got its (cancelled) result on the way out.
  const answered = new Set(s.messages.filter((m) => /^f\d+$/.test(m.id) && m.result).map((m) => m.id));
  assert.equal(answered.size, 255);
  assert.ok(!answered.has('f0'));
});
