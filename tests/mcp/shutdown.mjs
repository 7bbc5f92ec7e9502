// Stopping berth serve while containers run: SIGTERM, SIGINT and EOF on
// stdin must each cancel the calls, kill and remove their containers, and
// exit promptly with status 0. Runs against the real Docker engine.
import { after, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';

import {
  RawServer,
  TEST_IMAGE,
  conformancePluginDir,
  containersWith,
  killAll,
  removeContainers,
  sleep,
  slow,
} from './lib.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 180000 * slow }, fn);
const plugins = conformancePluginDir();
const instances = [];
after(() => {
  for (const id of instances) removeContainers(id);
  killAll();
  plugins.remove();
});

/** A server running two `sleep 30` containers; resolves once both exist. */
async function busyServer() {
  const s = new RawServer(['--plugin-dir', plugins.dir]);
  await s.initialize();
  const instance = await s.instanceId();
  instances.push(instance);
  for (const id of ['a', 'b']) {
    s.send({ jsonrpc: '2.0', id, method: 'tools/call', params: {
      name: 'execute_docker_container',
      arguments: { image: TEST_IMAGE, command: 'sleep 30' },
      _meta: { progressToken: id },
    } });
  }
  const deadline = Date.now() + 30000 * slow;
  while (containersWith(`berth.instance=${instance}`).length < 2 && Date.now() < deadline) {
    await sleep(100);
  }
  assert.equal(containersWith(`berth.instance=${instance}`).length, 2,
    `the containers did not start:\n${s.stderr}`);
  await sleep(500);
  return { s, instance };
}

async function checkStopped(s, instance, r, how) {
  assert.equal(r.code, 0, `${how}: exit ${r.code}/${r.signal} (97: valgrind errors)\n${s.stderr}`);
  // Killing a container takes the engine a moment; 30 s would mean it waited.
  assert.ok(r.ms < 15000 * slow, `${how}: exit took ${r.ms} ms`);
  assert.deepEqual(containersWith(`berth.instance=${instance}`), [],
    `${how}: containers left behind`);
  assert.equal(s.badLines.length, 0, s.badLines.join('\n'));
  // Whatever reached stdout is well-formed, and no call is reported as a
  // normal completion of the 30 s sleep.
  for (const m of s.messages.filter((x) => x.id === 'a' || x.id === 'b')) {
    assert.ok(!m.result || m.result.structuredContent?.exit_code !== 0, JSON.stringify(m));
  }
}

for (const sig of ['SIGTERM', 'SIGINT']) {
  test(`${sig} during two container runs: both removed, prompt clean exit`, async () => {
    const { s, instance } = await busyServer();
    const t0 = Date.now();
    s.proc.kill(sig);
    const r = await s.waitExit(30000, t0);
    await checkStopped(s, instance, r, sig);
    assert.match(s.stderr, new RegExp(`${sig}: cancelling 2 calls`));
  });
}

test('EOF on stdin during two container runs: both removed, prompt clean exit', async () => {
  const { s, instance } = await busyServer();
  const r = await s.close(30000);
  await checkStopped(s, instance, r, 'EOF');
});
