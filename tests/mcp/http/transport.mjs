// berth serve --http: the Streamable HTTP transport driven by raw HTTP
// requests: sessions, status codes, DNS rebinding and token checks, limits,
// SSE call streams with progress, and cancellation when a client drops a
// stream, DELETEs its session, or the server gets SIGTERM.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  HttpServer,
  request,
  openStream,
  initSession,
  sessionHeaders,
  tempDir,
  ACCEPT_BOTH,
  LATEST,
  slow,
} from './httplib.mjs';
import { containersWith, waitNoContainers, sleep, TEST_IMAGE } from '../lib.mjs';

const MAX_MESSAGE = 65536;

function call(id, name, args = {}, progressToken) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args, ...(progressToken !== undefined ? { _meta: { progressToken } } : {}) },
  };
}

async function waitFile(path, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs * slow;
  while (Date.now() < deadline) {
    if (existsSync(path)) {
      const text = readFileSync(path, 'utf8');
      if (text) return text.trim();
    }
    await sleep(100);
  }
  return null;
}

async function waitContainers(instance, n, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs * slow;
  for (;;) {
    const ids = containersWith(`berth.instance=${instance}`);
    if (ids.length >= n || Date.now() > deadline) return ids;
    await sleep(100);
  }
}

describe('berth serve --http', () => {
  let srv;
  let sid;
  let tmp;
  before(async () => {
    tmp = tempDir();
    srv = await HttpServer.start({ env: { BERTH_MCP_MAX_MESSAGE: String(MAX_MESSAGE) } });
    sid = await initSession(srv.url);
  });
  after(async () => {
    const r = await srv.stop();
    tmp.remove();
    assert.notEqual(r.code, 97, `valgrind found errors:\n${srv.stderr}`);
    assert.equal(r.code, 0, `exit after SIGTERM:\n${srv.stderr}`);
  });

  test('initialize issues an unguessable session id and answers in JSON', async () => {
    const r = await request(srv.url, {
      headers: { 'Content-Type': 'application/json', Accept: ACCEPT_BOTH },
      body: {
        jsonrpc: '2.0',
        id: 'init',
        method: 'initialize',
        params: { protocolVersion: LATEST, capabilities: {}, clientInfo: { name: 't', version: '1' } },
      },
    });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.match(r.headers['mcp-session-id'], /^[0-9a-f]{32}$/);
    assert.notEqual(r.headers['mcp-session-id'], sid);
    assert.equal(r.json.id, 'init');
    assert.equal(r.json.result.protocolVersion, LATEST);
    const d = await request(srv.url, { method: 'DELETE', headers: sessionHeaders(r.headers['mcp-session-id']) });
    assert.equal(d.status, 204);
  });

  test('an initialize the dispatcher refuses makes no session (400)', async () => {
    const r = await request(srv.url, {
      headers: { 'Content-Type': 'application/json', Accept: ACCEPT_BOTH },
      body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} },
    });
    assert.equal(r.status, 400);
    assert.equal(r.headers['mcp-session-id'], undefined);
    assert.equal(r.json.error.code, -32602);
  });

  test('notifications and client responses get 202 and no body', async () => {
    const n = await request(srv.url, {
      headers: sessionHeaders(sid),
      body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 999 } },
    });
    assert.equal(n.status, 202);
    assert.equal(n.text, '');
    const r = await request(srv.url, { headers: sessionHeaders(sid), body: { jsonrpc: '2.0', id: 5, result: {} } });
    assert.equal(r.status, 202);
    assert.equal(r.text, '');
  });

  test('requests in a session: tools/list and ping as JSON', async () => {
    const r = await request(srv.url, { headers: sessionHeaders(sid), body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
    assert.equal(r.status, 200);
    assert.ok(r.json.result.tools.some((t) => t.name === 'test_sleep'));
    const p = await request(srv.url, { headers: sessionHeaders(sid), body: { jsonrpc: '2.0', id: 'p', method: 'ping' } });
    assert.deepEqual(p.json, { jsonrpc: '2.0', id: 'p', result: {} });
  });

  test('a missing session id is 400, an unknown one 404', async () => {
    const h = sessionHeaders(sid);
    delete h['Mcp-Session-Id'];
    const m = await request(srv.url, { headers: h, body: { jsonrpc: '2.0', id: 3, method: 'tools/list' } });
    assert.equal(m.status, 400);
    assert.equal(m.json.id, null);
    assert.match(m.json.error.message, /Mcp-Session-Id/);
    const u = await request(srv.url, {
      headers: sessionHeaders('0123456789abcdef0123456789abcdef'),
      body: { jsonrpc: '2.0', id: 3, method: 'tools/list' },
    });
    assert.equal(u.status, 404);
    const junk = await request(srv.url, {
      headers: sessionHeaders('not a session'),
      body: { jsonrpc: '2.0', id: 3, method: 'tools/list' },
    });
    assert.equal(junk.status, 404);
  });

  test('MCP-Protocol-Version: unsupported is 400, absent or known is fine', async () => {
    const body = { jsonrpc: '2.0', id: 4, method: 'ping' };
    const bad = await request(srv.url, { headers: sessionHeaders(sid, { 'MCP-Protocol-Version': '1999-01-01' }), body });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /1999-01-01/);
    const h = sessionHeaders(sid);
    delete h['MCP-Protocol-Version'];
    assert.equal((await request(srv.url, { headers: h, body })).status, 200);
    const old = await request(srv.url, { headers: sessionHeaders(sid, { 'MCP-Protocol-Version': '2025-03-26' }), body });
    assert.equal(old.status, 200);
  });

  test('a foreign Origin is 403; loopback origins get CORS headers', async () => {
    const body = { jsonrpc: '2.0', id: 6, method: 'ping' };
    for (const origin of ['http://evil.example', 'null', 'http://localhost.evil.example', 'file://']) {
      const r = await request(srv.url, { headers: sessionHeaders(sid, { Origin: origin }), body });
      assert.equal(r.status, 403, origin);
      assert.match(r.json.error.message, /Origin/);
    }
    for (const origin of ['http://localhost:5173', 'https://127.0.0.1', 'http://[::1]:8080']) {
      const r = await request(srv.url, { headers: sessionHeaders(sid, { Origin: origin }), body });
      assert.equal(r.status, 200, origin);
      assert.equal(r.headers['access-control-allow-origin'], origin);
      assert.match(r.headers['access-control-expose-headers'], /Mcp-Session-Id/);
    }
    const pre = await request(srv.url, {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://localhost:5173',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type, mcp-session-id',
      },
    });
    assert.equal(pre.status, 204);
    assert.match(pre.headers['access-control-allow-headers'], /Mcp-Session-Id/);
    const evil = await request(srv.url, { method: 'OPTIONS', headers: { Origin: 'http://evil.example' } });
    assert.equal(evil.status, 403);
  });

  test('a Host that is not a loopback name is 403 (DNS rebinding)', async () => {
    const body = { jsonrpc: '2.0', id: 7, method: 'ping' };
    for (const host of ['evil.example.com', `evil.example.com:${srv.port}`, '10.1.2.3', 'localhost:x']) {
      const r = await request(srv.url, { headers: sessionHeaders(sid, { Host: host }), body });
      assert.equal(r.status, 403, host);
    }
    for (const host of [`localhost:${srv.port}`, `127.0.0.1:${srv.port}`, '[::1]', 'LOCALHOST']) {
      const r = await request(srv.url, { headers: sessionHeaders(sid, { Host: host }), body });
      assert.equal(r.status, 200, host);
    }
  });

  test('other paths are 404, GET and PUT 405', async () => {
    const r = await request(srv.url.replace(/\/mcp$/, '/other'), { headers: sessionHeaders(sid), body: '{}' });
    assert.equal(r.status, 404);
    const slash = await request(srv.url + '/', { headers: sessionHeaders(sid), body: '{}' });
    assert.equal(slash.status, 404);
    const g = await request(srv.url, { method: 'GET', headers: { ...sessionHeaders(sid), Accept: 'text/event-stream' } });
    assert.equal(g.status, 405);
    assert.match(g.headers.allow, /POST/);
    const p = await request(srv.url, { method: 'PUT', headers: sessionHeaders(sid), body: '{}' });
    assert.equal(p.status, 405);
  });

  test('a message over the size limit is 413, with or without Content-Length', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'ping', params: { pad: 'x'.repeat(MAX_MESSAGE) } });
    const a = await request(srv.url, { headers: sessionHeaders(sid), body: big });
    assert.equal(a.status, 413);
    assert.match(a.json.error.message, new RegExp(String(MAX_MESSAGE)));
    const b = await request(srv.url, { headers: sessionHeaders(sid), body: big, chunked: true });
    assert.equal(b.status, 413);
    const fits = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping', params: { pad: 'x'.repeat(MAX_MESSAGE - 200) } });
    assert.equal((await request(srv.url, { headers: sessionHeaders(sid), body: fits, chunked: true })).status, 200);
  });

  test('malformed bodies are 400 with a JSON-RPC error; wrong media types 406/415', async () => {
    const bad = await request(srv.url, { headers: sessionHeaders(sid), body: '{"jsonrpc":' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, -32700);
    const batch = await request(srv.url, { headers: sessionHeaders(sid), body: [{ jsonrpc: '2.0', id: 1, method: 'ping' }] });
    assert.equal(batch.status, 400);
    assert.equal(batch.json.error.code, -32600);
    const accept = await request(srv.url, { headers: sessionHeaders(sid, { Accept: 'text/html' }), body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    assert.equal(accept.status, 406);
    const ctype = await request(srv.url, { headers: sessionHeaders(sid, { 'Content-Type': 'text/plain' }), body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    assert.equal(ctype.status, 415);
  });

  test('a client that accepts only SSE gets answers as events', async () => {
    const r = await request(srv.url, {
      headers: sessionHeaders(sid, { Accept: 'text/event-stream' }),
      body: { jsonrpc: '2.0', id: 10, method: 'ping' },
    });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    assert.match(r.text, /^id: \d+\ndata: \{"jsonrpc":"2.0","id":10,"result":\{\}\}\n\n$/);
  });

  test('a call streams its progress, then its response, then the stream ends', async () => {
    const st = await openStream(srv.url, { headers: sessionHeaders(sid), body: call(11, 'test_tool_with_progress', {}, 'tok') });
    assert.equal(st.status, 200);
    assert.match(st.headers['content-type'], /^text\/event-stream/);
    await st.waitEnd();
    const evs = st.events.filter((e) => !e.comment);
    // SEP-1699: first an event id with empty data, and a retry time.
    assert.equal(evs[0].data, '');
    assert.ok(evs[0].id);
    assert.ok(evs[0].retry > 0);
    const msgs = evs.slice(1).map((e) => e.message);
    const progress = msgs.filter((m) => m.method === 'notifications/progress');
    assert.deepEqual(progress.map((m) => m.params.progress), [0, 50, 100]);
    assert.ok(progress.every((m) => m.params.progressToken === 'tok' && m.params.total === 100));
    const last = msgs[msgs.length - 1];
    assert.equal(last.id, 11);
    assert.equal(last.result.isError, false);
    // Event ids are unique.
    assert.equal(new Set(evs.map((e) => e.id)).size, evs.length);
  });

  test("a call's log messages go on its own stream", async () => {
    const st = await openStream(srv.url, { headers: sessionHeaders(sid), body: call(12, 'test_tool_with_logging') });
    await st.waitEnd();
    const msgs = st.events.filter((e) => e.message).map((e) => e.message);
    const logs = msgs.filter((m) => m.method === 'notifications/message');
    assert.deepEqual(logs.map((m) => m.params.data), ['Tool execution started', 'Tool processing data', 'Tool execution completed']);
    assert.equal(msgs[msgs.length - 1].id, 12);
  });

  test('a client that accepts only JSON gets the call result as one JSON body', async () => {
    const r = await request(srv.url, {
      headers: sessionHeaders(sid, { Accept: 'application/json' }),
      body: call(13, 'test_tool_with_progress', {}, 'tok'),
    });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.equal(r.json.id, 13);
    assert.equal(r.json.result.isError, false);
  });

  test('concurrent calls in one session each get their own stream', async () => {
    const ids = [21, 22, 23, 24, 25, 26];
    const streams = await Promise.all(
      ids.map((id) => openStream(srv.url, { headers: sessionHeaders(sid), body: call(id, 'test_echo', { text: `t${id}`, count: id }) })),
    );
    const slow1 = await openStream(srv.url, { headers: sessionHeaders(sid), body: call(27, 'test_sleep', { seconds: 0.5 }) });
    for (const [i, st] of streams.entries()) {
      await st.waitEnd();
      const msgs = st.events.filter((e) => e.message).map((e) => e.message);
      assert.equal(msgs.length, 1);
      assert.equal(msgs[0].id, ids[i]);
      assert.equal(msgs[0].result.structuredContent.text, `t${ids[i]}`);
    }
    await slow1.waitEnd();
    assert.equal(slow1.events.filter((e) => e.message).pop().message.id, 27);
  });

  test('a dropped stream cancels its call', async () => {
    const marker = join(tmp.dir, 'dropped');
    const st = await openStream(srv.url, { headers: sessionHeaders(sid), body: call(30, 'test_sleep', { seconds: 60, marker }) });
    await st.until((evs) => evs.length > 0, 'the priming event');
    st.close();
    assert.equal(await waitFile(marker), 'cancelled');
    // The session goes on; the id is free again.
    const r = await request(srv.url, { headers: sessionHeaders(sid), body: call(30, 'test_echo', { text: 'again', count: 1 }) });
    assert.equal(r.status, 200);
    assert.match(r.text, /again/);
  });

  test('notifications/cancelled from another POST ends the call stream without a response', async () => {
    const marker = join(tmp.dir, 'notified');
    const st = await openStream(srv.url, { headers: sessionHeaders(sid), body: call('c1', 'test_sleep', { seconds: 60, marker }) });
    await st.until((evs) => evs.length > 0, 'the priming event');
    const n = await request(srv.url, {
      headers: sessionHeaders(sid),
      body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'c1', reason: 'test' } },
    });
    assert.equal(n.status, 202);
    await st.waitEnd();
    assert.equal(await waitFile(marker), 'cancelled');
    assert.deepEqual(st.events.filter((e) => e.message), [], 'a cancelled request gets no response');
  });

  test('a dropped stream kills and removes its container', async () => {
    const st = await openStream(srv.url, {
      headers: sessionHeaders(sid),
      body: call(31, 'execute_docker_container', { image: TEST_IMAGE, command: 'sleep 30' }, 'p31'),
    });
    const running = await waitContainers(srv.instance, 1);
    assert.equal(running.length, 1, `no container started:\n${st.raw}\n${srv.stderr}`);
    const t0 = Date.now();
    st.close();
    const left = await waitNoContainers(srv.instance, 25000 * slow);
    assert.deepEqual(left, []);
    assert.ok(Date.now() - t0 < 25000 * slow);
    assert.match(srv.stderr, /closed the stream of request 31/);
  });

  test('DELETE ends the session and cancels its calls', async () => {
    const own = await initSession(srv.url);
    const marker = join(tmp.dir, 'deleted');
    const st = await openStream(srv.url, { headers: sessionHeaders(own), body: call(40, 'test_sleep', { seconds: 60, marker }) });
    await st.until((evs) => evs.length > 0, 'the priming event');
    const d = await request(srv.url, { method: 'DELETE', headers: sessionHeaders(own) });
    assert.equal(d.status, 204);
    // The cancelled call still answers on its stream, which then ends.
    await st.waitEnd();
    assert.equal(await waitFile(marker), 'cancelled');
    const resp = st.events.filter((e) => e.message && e.message.id === 40);
    assert.equal(resp.length, 1);
    const after = await request(srv.url, { headers: sessionHeaders(own), body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    assert.equal(after.status, 404);
    const again = await request(srv.url, { method: 'DELETE', headers: sessionHeaders(own) });
    assert.equal(again.status, 404);
    const h = sessionHeaders(own);
    delete h['Mcp-Session-Id'];
    assert.equal((await request(srv.url, { method: 'DELETE', headers: h })).status, 400);
  });
});

describe('session limits and idle expiry', () => {
  test('initialize beyond BERTH_MCP_MAX_SESSIONS is 503; idle sessions expire', async () => {
    const srv = await HttpServer.start({ env: { BERTH_MCP_MAX_SESSIONS: '2', BERTH_MCP_SESSION_IDLE_S: '1' } });
    try {
      const a = await initSession(srv.url);
      const b = await initSession(srv.url);
      const body = {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: LATEST, capabilities: {}, clientInfo: { name: 't', version: '1' } },
      };
      const headers = { 'Content-Type': 'application/json', Accept: ACCEPT_BOTH };
      const full = await request(srv.url, { headers, body });
      assert.equal(full.status, 503);
      // Initialize (which touches no session) until the idle ones are gone.
      let r;
      const deadline = Date.now() + 20000 * slow;
      do {
        await sleep(300);
        r = await request(srv.url, { headers, body });
      } while (r.status === 503 && Date.now() < deadline);
      assert.equal(r.status, 200);
      for (const old of [a, b]) {
        const x = await request(srv.url, { headers: sessionHeaders(old), body: { jsonrpc: '2.0', id: 2, method: 'ping' } });
        assert.equal(x.status, 404);
      }
      assert.match(srv.stderr, /unused for \d+ s: ended/);
    } finally {
      const st = await srv.stop();
      assert.equal(st.code, 0, srv.stderr);
    }
  });
});

describe('--token-file and --allow-origin', () => {
  test('requests need the bearer token; the allowed origin passes', async () => {
    const tmp = tempDir();
    const tokenFile = tmp.file('token', 's3cret-Token_1\n');
    const srv = await HttpServer.start({ serveArgs: ['--token-file', tokenFile, '--allow-origin', 'https://app.example'] });
    try {
      const body = {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: LATEST, capabilities: {}, clientInfo: { name: 't', version: '1' } },
      };
      const headers = { 'Content-Type': 'application/json', Accept: ACCEPT_BOTH };
      const none = await request(srv.url, { headers, body });
      assert.equal(none.status, 401);
      assert.match(none.headers['www-authenticate'], /^Bearer/);
      for (const auth of ['Bearer s3cret-Token_', 'Bearer s3cret-Token_12', 'Basic s3cret-Token_1', 'Bearer ']) {
        const r = await request(srv.url, { headers: { ...headers, Authorization: auth }, body });
        assert.equal(r.status, 401, auth);
      }
      const auth = { Authorization: 'Bearer s3cret-Token_1' };
      const sid = await initSession(srv.url, auth);
      const ok = await request(srv.url, {
        headers: sessionHeaders(sid, { ...auth, Origin: 'https://app.example' }),
        body: { jsonrpc: '2.0', id: 2, method: 'ping' },
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
      const noauth = await request(srv.url, { headers: sessionHeaders(sid), body: { jsonrpc: '2.0', id: 3, method: 'ping' } });
      assert.equal(noauth.status, 401);
      assert.doesNotMatch(srv.stderr, /s3cret/);
    } finally {
      const st = await srv.stop();
      tmp.remove();
      assert.equal(st.code, 0, srv.stderr);
    }
  });
});

describe('start-up errors', () => {
  test('a bad address or an empty token file is refused with exit 2', async () => {
    const tmp = tempDir();
    try {
      for (const [serveArgs, listen, pattern] of [
        [[], 'nonsense', /not an address/],
        [[], '127.0.0.1:99999', /not an address/],
        [['--token-file', tmp.file('empty', '\n')], '127.0.0.1:0', /is empty/],
        [['--token-file', join(tmp.dir, 'missing')], '127.0.0.1:0', /cannot read/],
      ]) {
        await assert.rejects(HttpServer.start({ serveArgs, listen }), (e) => {
          assert.match(e.message, pattern);
          assert.match(e.message, /"code":2/);
          return true;
        });
      }
    } finally {
      tmp.remove();
    }
  });
});

describe('SIGTERM', () => {
  test('cancels the calls in flight, removes their containers, exits 0', async () => {
    const srv = await HttpServer.start();
    let st;
    try {
      const sid = await initSession(srv.url);
      st = await openStream(srv.url, {
        headers: sessionHeaders(sid),
        body: call(1, 'execute_docker_container', { image: TEST_IMAGE, command: 'sleep 30' }),
      });
      const running = await waitContainers(srv.instance, 1);
      assert.equal(running.length, 1, `no container started:\n${st.raw}\n${srv.stderr}`);
    } catch (e) {
      await srv.stop();
      throw e;
    }
    const r = await srv.stop('SIGTERM');
    assert.equal(r.code, 0, srv.stderr);
    assert.ok(r.ms < 25000 * slow, `took ${r.ms} ms`);
    await st.waitEnd();
    // The call answered before the server went (a cancelled run).
    const resp = st.events.filter((e) => e.message && e.message.id === 1);
    assert.equal(resp.length, 1, st.raw);
    assert.deepEqual(containersWith(`berth.instance=${srv.instance}`), []);
  });

  test('SIGINT on an idle server exits 0', async () => {
    const srv = await HttpServer.start();
    await initSession(srv.url);
    const r = await srv.stop('SIGINT');
    assert.equal(r.code, 0, srv.stderr);
  });
});
