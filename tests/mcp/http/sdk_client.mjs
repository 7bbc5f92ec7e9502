// The official TypeScript SDK's StreamableHTTPClientTransport against
// `berth serve --http`: it lists the six seed tools and calls each of them with
// a progress callback (a run, a payload run, ps and stop on a running call, a
// pull from the local registry, and a build from a local git repository), then
// ends the session with DELETE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';

import { HttpServer, request, sessionHeaders, tempDir, slow } from './httplib.mjs';
import { SEED_TOOLS, TEST_IMAGE, containersWith, sleep } from '../lib.mjs';

// The SDK comes with the conformance suite (tests/mcp/http/setup.sh) and with
// tests/mcp/setup.sh; node finds whichever node_modules holds it.
let Client;
let StreamableHTTPClientTransport;
try {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
} catch (e) {
  throw new Error(`the MCP TypeScript SDK is not installed: run tests/mcp/http/setup.sh (npm ci) first (${e.message})`);
}

const REGISTRY = process.env.BERTH_REGISTRY_ADDR || '127.0.0.1:5000';
const TIMEOUT = 120000 * slow;

let srv;
let client;
let transport;
let tmp;
const errors = [];
const images = []; // removed at the end: only what this test made

function docker(...args) {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function callWithProgress(name, args) {
  const progress = [];
  const result = await client.callTool({ name, arguments: args }, undefined, {
    onprogress: (p) => progress.push(p),
    timeout: TIMEOUT,
  });
  return { result, progress };
}

before(async () => {
  tmp = tempDir('berth-http-sdk-');
  srv = await HttpServer.start({ globalArgs: ['--allow-local-repos'] });
  client = new Client({ name: 'berth-http-sdk-test', version: '1.0.0' });
  transport = new StreamableHTTPClientTransport(new URL(srv.url));
  transport.onerror = (e) => errors.push(e);
  await client.connect(transport);
});

after(async () => {
  try {
    await client?.close();
  } finally {
    for (const image of images) {
      try {
        docker('rmi', '-f', image);
      } catch {
        /* already gone */
      }
    }
    const r = await srv.stop();
    tmp.remove();
    assert.notEqual(r.code, 97, `valgrind found errors:\n${srv.stderr}`);
    assert.equal(r.code, 0, srv.stderr);
  }
});

test('the session: an id, the negotiated version, no transport errors', () => {
  assert.match(transport.sessionId, /^[0-9a-f]{32}$/);
  assert.equal(client.getServerVersion().name, 'berth');
});

test('lists the six seed tools with their schemas', async () => {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const name of SEED_TOOLS) assert.ok(names.includes(name), `${name} in ${names}`);
  for (const t of tools) assert.equal(t.inputSchema.type, 'object');
});

test('execute_docker_container streams output as progress', async () => {
  const { result, progress } = await callWithProgress('execute_docker_container', {
    image: TEST_IMAGE,
    command: 'sh -c "echo one; sleep 0.3; echo two"',
  });
  assert.equal(result.isError, false, JSON.stringify(result));
  assert.equal(result.structuredContent.stdout, 'one\ntwo\n');
  assert.ok(progress.length >= 2, JSON.stringify(progress));
  assert.ok(progress.some((p) => /one/.test(p.message ?? '')));
});

test('execute_with_payload runs a script', async () => {
  const { result, progress } = await callWithProgress('execute_with_payload', {
    image: TEST_IMAGE,
    payload: '#!/bin/sh\necho payload ran\n',
  });
  assert.equal(result.isError, false, JSON.stringify(result));
  assert.match(result.structuredContent.stdout, /payload ran/);
  assert.ok(progress.length >= 1, JSON.stringify(progress));
});

test('list_running_containers and stop_container reach a running call', async () => {
  const running = callWithProgress('execute_docker_container', { image: TEST_IMAGE, command: 'sleep 30' });
  let id;
  const deadline = Date.now() + 30000 * slow;
  while (!id && Date.now() < deadline) {
    const { result } = await callWithProgress('list_running_containers', {});
    assert.equal(result.isError, false, JSON.stringify(result));
    const mine = containersWith(`berth.instance=${srv.instance}`);
    const c = result.structuredContent.containers.find((x) => mine.some((m) => x.ID.startsWith(m)));
    id = c?.ID;
    if (!id) await sleep(200);
  }
  assert.ok(id, 'the running call shows in list_running_containers');
  const { result: stopped } = await callWithProgress('stop_container', { container_id: id });
  assert.equal(stopped.isError, false, JSON.stringify(stopped));
  assert.equal(stopped.structuredContent.success, true);
  const { result: run } = await running;
  assert.notEqual(run.structuredContent.exit_code, 0, JSON.stringify(run));
});

test('pull_docker_image pulls from the local registry with progress', async () => {
  const ref = `${REGISTRY}/berth-http-test/busybox:${randomBytes(6).toString('hex')}`;
  docker('tag', TEST_IMAGE, ref);
  try {
    docker('push', ref);
  } finally {
    docker('rmi', ref);
  }
  images.push(ref);
  const { result, progress } = await callWithProgress('pull_docker_image', { image: ref });
  assert.equal(result.isError, false, JSON.stringify(result));
  assert.equal(result.structuredContent.success, true);
  assert.ok(progress.length >= 1, JSON.stringify(progress));
  docker('image', 'inspect', ref);
});

test('build_and_execute_github_repo builds a local repository with progress', async () => {
  const repo = join(tmp.dir, 'repo');
  const git = (...a) =>
    execFileSync('git', ['-c', 'user.name=berth-test', '-c', 'user.email=test@berth.invalid', ...a], {
      cwd: repo,
      stdio: 'ignore',
    });
  execFileSync('mkdir', ['-p', repo]);
  writeFileSync(
    join(repo, 'Dockerfile'),
    `FROM ${TEST_IMAGE}\nLABEL berth.test=1\nRUN echo built > /built\nCMD ["cat", "/built"]\n`,
  );
  git('init', '-q', '-b', 'main');
  git('add', 'Dockerfile');
  git('commit', '-q', '-m', 'a Dockerfile');
  const { result, progress } = await callWithProgress('build_and_execute_github_repo', { repo_url: `file://${repo}` });
  if (result.structuredContent?.image) images.push(result.structuredContent.image);
  assert.equal(result.isError, false, JSON.stringify(result));
  assert.equal(result.structuredContent.stdout, 'built\n');
  assert.ok(progress.length >= 1, JSON.stringify(progress));
});

test('terminateSession ends the session (DELETE); its id is then unknown', async () => {
  const sid = transport.sessionId;
  await transport.terminateSession();
  const r = await request(srv.url, { headers: sessionHeaders(sid), body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
  assert.equal(r.status, 404);
  assert.deepEqual(errors, []);
});
