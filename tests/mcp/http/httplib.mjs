// Shared by the Streamable HTTP tests: start `berth serve --http 127.0.0.1:0`
// (under valgrind when BERTH_VALGRIND=1, through ../lib.mjs), raw HTTP
// requests with any header (node:http, which lets a test forge Host), and an
// incremental SSE reader.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  serverCommand,
  conformancePluginDir,
  instanceFromStderr,
  removeContainers,
  slow,
} from '../lib.mjs';

export { slow };
const here = dirname(fileURLToPath(import.meta.url));
export const ACCEPT_BOTH = 'application/json, text/event-stream';
export const LATEST = '2025-11-25';

/** A fresh temporary directory, removed by remove(). */
export function tempDir(prefix = 'berth-http-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    file(name, text) {
      const p = join(dir, name);
      writeFileSync(p, text, { mode: 0o600 });
      return p;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Known third-party leaks (lsan.supp, valgrind.supp: each says why) must not
 * fail an ASan or valgrind run of the server. Plugins stay loaded at exit so
 * that their libraries (and so the suppressed frames) can still be named.
 */
function withSuppressions(cmd) {
  cmd.env.BERTH_KEEP_PLUGINS = '1';
  const lsan = `suppressions=${join(here, 'lsan.supp')}:print_suppressions=0`;
  cmd.env.LSAN_OPTIONS = cmd.env.LSAN_OPTIONS ? `${cmd.env.LSAN_OPTIONS}:${lsan}` : lsan;
  const v = cmd.args.indexOf('valgrind');
  if (v >= 0) cmd.args.splice(v + 1, 0, `--suppressions=${join(here, 'valgrind.supp')}`);
}

export class HttpServer {
  /**
   * Start `berth [globalArgs] --plugin-dir <conformance> serve --http
   * 127.0.0.1:0 [serveArgs]` and wait for its "serving MCP on" line.
   */
  static async start({ globalArgs = [], serveArgs = [], env = {}, listen = '127.0.0.1:0' } = {}) {
    const s = new HttpServer();
    s.plugins = conformancePluginDir();
    const cmd = serverCommand(['--plugin-dir', s.plugins.dir, ...globalArgs], env);
    cmd.args.push('--http', listen, ...serveArgs);
    withSuppressions(cmd);
    s.proc = spawn(cmd.command, cmd.args, { env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
    s.stdout = '';
    s.stderr = '';
    s.proc.stdout.setEncoding('utf8');
    s.proc.stdout.on('data', (c) => (s.stdout += c));
    s.proc.stderr.setEncoding('utf8');
    s.proc.stderr.on('data', (c) => (s.stderr += c));
    s.exited = new Promise((resolve) => s.proc.on('exit', (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + 20000 * slow;
    for (;;) {
      const m = /serving MCP on http:\/\/(\S+):(\d+)\/mcp/.exec(s.stderr);
      if (m) {
        s.host = m[1];
        s.port = Number(m[2]);
        s.url = `http://${s.host}:${s.port}/mcp`;
        s.instance = instanceFromStderr(s.stderr);
        return s;
      }
      const gone = await Promise.race([s.exited, new Promise((r) => setTimeout(() => r(null), 50))]);
      if (gone || Date.now() > deadline) {
        s.proc.kill('SIGKILL');
        s.plugins.remove();
        throw new Error(`berth serve --http did not start (${JSON.stringify(gone)}):\n${s.stderr}`);
      }
    }
  }

  /** Send `signal` and wait for the exit: {code, signal, ms}. */
  async stop(signal = 'SIGTERM', timeoutMs = 30000) {
    const t0 = Date.now();
    this.proc.kill(signal);
    let timer;
    const r = await Promise.race([
      this.exited,
      new Promise((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs * slow))),
    ]);
    clearTimeout(timer);
    this.plugins.remove();
    removeContainers(this.instance);
    if (!r) {
      this.proc.kill('SIGKILL');
      throw new Error(`the server did not exit within ${timeoutMs * slow} ms:\n${this.stderr}`);
    }
    return { ...r, ms: Date.now() - t0 };
  }
}

/**
 * One HTTP request. `headers` are sent as given (including Host, when set);
 * `body` may be a string or an object (sent as JSON). Resolves to
 * {status, headers, text, json} once the whole body arrived.
 */
export function request(url, { method = 'POST', headers = {}, body, chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const h = { ...headers };
    if (text !== undefined && !chunked) h['Content-Length'] = Buffer.byteLength(text);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method, headers: h, setHost: !('Host' in h) },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => {
          let json;
          try {
            json = data ? JSON.parse(data) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, text: data, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (text !== undefined) {
      if (chunked) {
        // Several writes without Content-Length: Transfer-Encoding: chunked.
        for (let i = 0; i < text.length; i += 1000) req.write(text.slice(i, i + 1000));
      } else {
        req.write(text);
      }
    }
    req.end();
  });
}

/** Parse complete SSE events out of `buf`; returns [events, rest]. */
export function parseSse(buf) {
  const events = [];
  let idx;
  while ((idx = buf.indexOf('\n\n')) >= 0) {
    const block = buf.slice(0, idx);
    buf = buf.slice(idx + 2);
    const ev = { comment: false };
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        ev.comment = true;
        continue;
      }
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'id') ev.id = value;
      else if (field === 'retry') ev.retry = Number(value);
      else if (field === 'event') ev.event = value;
    }
    if (data.length) ev.data = data.join('\n');
    if (ev.data !== undefined) {
      try {
        ev.message = ev.data ? JSON.parse(ev.data) : undefined;
      } catch {
        ev.message = undefined;
      }
    }
    events.push(ev);
  }
  return [events, buf];
}

/**
 * A POST whose response is read as it arrives. Resolves once the headers are
 * in: {status, headers, events (growing), ended, next(pred), close()}.
 */
export function openStream(url, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const text = JSON.stringify(body);
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers },
      },
      (res) => {
        const st = {
          status: res.statusCode,
          headers: res.headers,
          events: [],
          raw: '',
          ended: false,
          error: null,
          waiters: [],
        };
        let buf = '';
        const wake = () => {
          const w = st.waiters;
          st.waiters = [];
          for (const f of w) f();
        };
        res.setEncoding('utf8');
        res.on('data', (c) => {
          st.raw += c;
          let evs;
          [evs, buf] = parseSse(buf + c);
          st.events.push(...evs);
          wake();
        });
        res.on('end', () => {
          st.ended = true;
          wake();
        });
        res.on('error', (e) => {
          st.error = e;
          st.ended = true;
          wake();
        });
        res.on('close', () => {
          st.ended = true;
          wake();
        });
        /** Wait until pred(events) is truthy (returned) or the stream ends. */
        st.until = async (pred, what, timeoutMs = 20000) => {
          const deadline = Date.now() + timeoutMs * slow;
          for (;;) {
            const v = pred(st.events);
            if (v) return v;
            if (st.ended) throw new Error(`the stream ended before ${what}: ${st.raw.slice(-2000)}`);
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${st.raw.slice(-2000)}`);
            await new Promise((r) => {
              st.waiters.push(r);
              setTimeout(r, 100);
            });
          }
        };
        st.waitEnd = async (timeoutMs = 20000) => {
          const deadline = Date.now() + timeoutMs * slow;
          while (!st.ended) {
            if (Date.now() > deadline) throw new Error(`the stream did not end: ${st.raw.slice(-2000)}`);
            await new Promise((r) => {
              st.waiters.push(r);
              setTimeout(r, 100);
            });
          }
        };
        /** Drop the connection, as a client that goes away does. */
        st.close = () => {
          req.destroy();
          res.destroy();
        };
        resolve(st);
      },
    );
    req.on('error', reject);
    req.write(text);
    req.end();
  });
}

/** initialize + notifications/initialized; returns the session id. */
export async function initSession(url, headers = {}, version = LATEST) {
  const r = await request(url, {
    headers: { 'Content-Type': 'application/json', Accept: ACCEPT_BOTH, ...headers },
    body: {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'berth-http-test', version: '1' } },
    },
  });
  if (r.status !== 200 || !r.headers['mcp-session-id']) {
    throw new Error(`initialize failed: ${r.status} ${JSON.stringify(r.headers)} ${r.text}`);
  }
  const sid = r.headers['mcp-session-id'];
  const n = await request(url, {
    headers: { 'Content-Type': 'application/json', Accept: ACCEPT_BOTH, 'Mcp-Session-Id': sid, ...headers },
    body: { jsonrpc: '2.0', method: 'notifications/initialized' },
  });
  if (n.status !== 202) throw new Error(`notifications/initialized: ${n.status} ${n.text}`);
  return sid;
}

/** Headers of a request in session `sid`. */
export function sessionHeaders(sid, extra = {}) {
  return {
    'Content-Type': 'application/json',
    Accept: ACCEPT_BOTH,
    'Mcp-Session-Id': sid,
    'MCP-Protocol-Version': LATEST,
    ...extra,
  };
}
