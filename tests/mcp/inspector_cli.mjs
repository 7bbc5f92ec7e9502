// berth serve driven by the MCP Inspector's CLI mode
// (`npx @modelcontextprotocol/inspector --cli <berth> serve --method ...`),
// which starts the server over stdio for each command as a person would.
import { after, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import {
  CONFORMANCE_TOOLS,
  SEED_TOOLS,
  TEST_IMAGE,
  conformancePluginDir,
  here,
  serverCommand,
  slow,
} from './lib.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 180000 * slow }, fn);
const plugins = conformancePluginDir();
after(() => plugins.remove());

/**
 * Run the Inspector CLI against `berth serve`; resolves {code, stdout, stderr}.
 * The Inspector gives the server only a minimal environment, so what berth
 * needs is passed with -e.
 */
function inspector(methodArgs) {
  if (!existsSync(join(here, 'node_modules', '@modelcontextprotocol', 'inspector'))) {
    throw new Error('the Inspector is not installed: run tests/mcp/setup.sh (npm ci) first');
  }
  const { command, args, env } = serverCommand(['--plugin-dir', plugins.dir]);
  const pass = ['BERTH_PLUGIN_PATH', 'LD_BIND_NOW', 'BERTH_KEEP_PLUGINS', 'DOCKER_HOST',
    'BERTH_BACKEND'];
  const envArgs = pass.filter((k) => env[k] !== undefined).flatMap((k) => ['-e', `${k}=${env[k]}`]);
  const argv = ['--no', '--', '@modelcontextprotocol/inspector', '--cli', ...envArgs, command,
    ...args, ...methodArgs];
  return new Promise((resolve) => {
    execFile('npx', argv, { cwd: here, env: process.env, timeout: 120000 * slow,
      maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The JSON document the Inspector printed (after its deprecation banner). */
function output(r) {
  const start = r.stdout.indexOf('{');
  assert.ok(start >= 0, `no JSON in the Inspector's output:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.slice(start));
}

test('tools/list shows every tool with its schema and annotations', async () => {
  const r = await inspector(['--method', 'tools/list']);
  assert.equal(r.code, 0, r.stderr);
  const { tools } = output(r);
  const names = tools.map((t) => t.name);
  for (const n of [...SEED_TOOLS, ...CONFORMANCE_TOOLS]) assert.ok(names.includes(n), `${n} missing`);
  const run = tools.find((t) => t.name === 'execute_docker_container');
  assert.equal(run.inputSchema.properties.image.type, 'string');
  assert.equal(run.annotations.readOnlyHint, false);
});

test('tools/call runs a container and returns its output', async () => {
  const r = await inspector(['--method', 'tools/call', '--tool-name', 'execute_docker_container',
    '--tool-arg', `image=${TEST_IMAGE}`, '--tool-arg', "command=sh -c 'echo hello; echo oops >&2'"]);
  assert.equal(r.code, 0, r.stderr);
  const res = output(r);
  assert.equal(res.isError, false);
  assert.equal(res.structuredContent.stdout, 'hello\n');
  assert.equal(res.structuredContent.stderr, 'oops\n');
  assert.equal(res.structuredContent.exit_code, 0);
  assert.deepEqual(JSON.parse(res.content[0].text), res.structuredContent);
});

test('tools/call with typed arguments, and a tool error', async () => {
  let r = await inspector(['--method', 'tools/call', '--tool-name', 'test_echo',
    '--tool-arg', 'text=hi', '--tool-arg', 'count=2']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(output(r).structuredContent, { success: true, text: 'hi', count: 2 });

  r = await inspector(['--method', 'tools/call', '--tool-name', 'test_error_handling']);
  assert.equal(r.code, 0, r.stderr);
  const res = output(r);
  assert.equal(res.isError, true);
  assert.match(res.content[0].text, /intentionally/);
});

test('protocol errors reach the Inspector: unknown tool, unknown method', async () => {
  let r = await inspector(['--method', 'tools/call', '--tool-name', 'no_such_tool']);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /-32602.*unknown tool 'no_such_tool'/);

  r = await inspector(['--method', 'resources/list']);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /-32601/);

  r = await inspector(['--method', 'logging/setLevel', '--log-level', 'debug']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(output(r), {});
});
