// Shared by the MCP tests: how to start `berth serve`, where the plugins are,
// a line-oriented raw client, and Docker look-ups. Run by `make check`, which
// sets BERTH_BIN, BERTH_PLUGIN_PATH (the seed plugins), BERTH_TEST_PLUGIN_DIR
// (the conformance plugin) and LIBTOOL; BERTH_VALGRIND=1 runs every server
// under valgrind, and its errors fail the test.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const valgrind = process.env.BERTH_VALGRIND === '1';
/* Valgrind makes the server ~20x slower to start and to run C code. */
export const slow = valgrind ? 8 : 1;
export const TEST_IMAGE = process.env.BERTH_TEST_IMAGE || 'berth-test/busybox:latest';
export const SEED_TOOLS = [
  'execute_docker_container',
  'build_and_execute_github_repo',
  'execute_with_payload',
  'list_running_containers',
  'stop_container',
  'pull_docker_image',
];
export const CONFORMANCE_TOOLS = [
  'test_simple_text',
  'test_image_content',
  'test_audio_content',
  'test_embedded_resource',
  'test_multiple_content_types',
  'test_tool_with_logging',
  'test_tool_with_progress',
  'test_error_handling',
];

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this test through \`make check\``);
  return v;
}

/** Fail loudly (not skip) when setup.sh has not been run. */
export async function importClient(spec) {
  if (!existsSync(join(here, 'node_modules', '@modelcontextprotocol'))) {
    throw new Error(
      `${join(here, 'node_modules')} is missing: run tests/mcp/setup.sh (npm ci) first`,
    );
  }
  return import(spec);
}

/**
 * A directory holding only the conformance plugin (the test plugin directory
 * also holds deliberately broken plugins for the loader tests).
 */
export function conformancePluginDir() {
  const src = join(need('BERTH_TEST_PLUGIN_DIR'), 'conformance.so');
  if (!existsSync(src)) throw new Error(`${src} is missing: build tests/plugins/conformance.la`);
  const dir = mkdtempSync(join(tmpdir(), 'berth-mcp-plugins-'));
  symlinkSync(src, join(dir, 'conformance.so'));
  return {
    dir,
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * argv and environment to run `berth <globalArgs> serve`, under valgrind when
 * BERTH_VALGRIND=1 (through libtool, so the real binary is checked).
 */
export function serverCommand(globalArgs = [], extraEnv = {}) {
  const bin = need('BERTH_BIN');
  const args = [...globalArgs, 'serve'];
  if (process.env.BERTH_TEST_BACKEND) args.unshift('--backend', process.env.BERTH_TEST_BACKEND);
  const env = { ...process.env, LD_BIND_NOW: '1', ...extraEnv };
  if (!valgrind) return { command: bin, args, env };
  env.BERTH_KEEP_PLUGINS = '1';
  // make passes LIBTOOL as "$(SHELL) ../libtool", relative to the build's
  // tests/ directory; a client may start the server from elsewhere.
  const libtool = (process.env.LIBTOOL || 'libtool')
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => (w.includes('/') ? resolve(w) : w));
  return {
    command: libtool[0],
    args: [
      ...libtool.slice(1),
      '--mode=execute',
      'valgrind',
      '--quiet',
      '--error-exitcode=97',
      '--leak-check=full',
      '--errors-for-leak-kinds=definite',
      '--track-fds=no',
      bin,
      ...args,
    ],
    env,
  };
}

/* Every server a test started, so a failed test cannot leave one running
 * (its pipes would keep node, and so `make check`, waiting forever). */
const live = new Set();

/** Kill whatever servers are still running; tests call it in after(). */
export function killAll() {
  for (const p of live) p.kill('SIGKILL');
  live.clear();
}

/** Track a child process started some other way (an SDK transport's). */
export function track(proc) {
  if (!proc) return;
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
}

/**
 * A raw client: spawns the server, sends lines, and collects every stdout
 * line as parsed JSON (a non-JSON line on stdout fails the test).
 */
export class RawServer {
  constructor(globalArgs = [], extraEnv = {}) {
    const { command, args, env } = serverCommand(globalArgs, extraEnv);
    this.proc = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    track(this.proc);
    this.messages = [];
    this.badLines = [];
    this.stderr = '';
    this.waiters = [];
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({ code, signal }));
    });
    let buf = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.messages.push(JSON.parse(line));
        } catch {
          this.badLines.push(line);
        }
        this.wake();
      }
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk) => {
      this.stderr += chunk;
      this.wake();
    });
    this.proc.stdin.on('error', () => {});
  }

  wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  send(obj) {
    this.sendLine(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  sendLine(line) {
    this.proc.stdin.write(line + '\n');
  }

  /** Wait until pred(messages) returns a truthy value, which is returned. */
  async until(pred, what, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs * slow;
    for (;;) {
      const v = pred(this.messages);
      if (v) return v;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; got ${JSON.stringify(this.messages).slice(-2000)}\n` +
            `stderr: ${this.stderr.slice(-2000)}`,
        );
      }
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** The response to request `id` (the first at or after message `from`). */
  response(id, timeoutMs, from = 0) {
    return this.until(
      (ms) => ms.slice(from).find((m) => m.id === id && ('result' in m || 'error' in m)),
      `the response to ${JSON.stringify(id)}`,
      timeoutMs,
    );
  }

  async request(id, method, params) {
    const from = this.messages.length;
    this.send({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });
    return this.response(id, undefined, from);
  }

  async initialize(version = '2025-11-25') {
    const r = await this.request('init', 'initialize', {
      protocolVersion: version,
      capabilities: {},
      clientInfo: { name: 'berth-raw-test', version: '1' },
    });
    this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return r;
  }

  /** Close stdin and wait for the exit; returns {code, signal, ms}. */
  async close(timeoutMs = 20000) {
    const t0 = Date.now();
    this.proc.stdin.end();
    return this.waitExit(timeoutMs, t0);
  }

  async waitExit(timeoutMs = 20000, t0 = Date.now()) {
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs * slow);
    });
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (!r) {
      this.proc.kill('SIGKILL');
      throw new Error(`the server did not exit within ${timeoutMs * slow} ms`);
    }
    return { ...r, ms: Date.now() - t0 };
  }

  /** The host instance id, from the server's first log line. */
  async instanceId() {
    await this.until(() => /instance ([0-9a-f]+)/.test(this.stderr), 'the instance id in stderr');
    return this.stderr.match(/instance ([0-9a-f]+)/)[1];
  }
}

/** The instance id berth logs on stderr at start ("... (instance <hex>)"). */
export function instanceFromStderr(text) {
  const m = /instance ([0-9a-f]+)/.exec(text);
  return m ? m[1] : null;
}

/** Ids of containers (any state) carrying label `label` (k=v). */
export function containersWith(label) {
  const out = execFileSync('docker', ['ps', '-a', '-q', '--filter', `label=${label}`], {
    encoding: 'utf8',
  });
  return out.split('\n').filter(Boolean);
}

/** Poll until no container of this berth instance is left; returns the count left. */
export async function waitNoContainers(instance, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let left = containersWith(`berth.instance=${instance}`);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    left = containersWith(`berth.instance=${instance}`);
  }
  return left;
}

/** Remove what a failed test may have left (only this instance's containers). */
export function removeContainers(instance) {
  if (!instance) return;
  const ids = containersWith(`berth.instance=${instance}`);
  if (ids.length) execFileSync('docker', ['rm', '-f', '-v', ...ids], { stdio: 'ignore' });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
