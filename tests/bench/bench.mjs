// berth's cost over the engine's own work: a tool call against `docker run`,
// measured in the same run, interleaved so that drift hits both alike.
// Reports medians and ratios; it asserts nothing about speed.
//
//   node tests/bench/bench.mjs [--iterations N] [--command 'true']
//
// Environment: BERTH_BIN (default: berth on PATH), BERTH_PLUGIN_PATH,
// BERTH_TEST_IMAGE (default berth-test/busybox:latest), DOCKER (default docker).
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const iterations = Number(opt("--iterations", "20"));
const command = opt("--command", "true");
const berth = process.env.BERTH_BIN || "berth";
const image = process.env.BERTH_TEST_IMAGE || "berth-test/busybox:latest";
const docker = process.env.DOCKER || "docker";

function timed(argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}: ${r.stderr}`);
  return ms;
}

// A persistent MCP server over stdio: what an agent actually talks to.
function mcpServer(backend) {
  const child = spawn(berth, ["--backend", backend, "--log-level", "warning", "serve"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const pending = new Map();
  createInterface({ input: child.stdout }).on("line", (line) => {
    const msg = JSON.parse(line);
    if (msg.id !== undefined && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  });
  let next = 1;
  const request = (method, params) =>
    new Promise((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
    });
  return {
    async init() {
      await request("initialize", {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "berth-bench", version: "1" },
      });
      child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
    },
    async call() {
      const t0 = process.hrtime.bigint();
      const r = await request("tools/call", {
        name: "execute_docker_container",
        arguments: { image, command },
      });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (!r.result || r.result.isError) throw new Error(`MCP call failed: ${JSON.stringify(r)}`);
      return ms;
    },
    close() {
      child.stdin.end();
      return new Promise((resolve) => child.on("exit", resolve));
    },
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const lanes = {
  "docker run --rm (baseline)": () =>
    timed([docker, "run", "--rm", "--network", "none", image, "sh", "-c", command]),
  "berth call, socket backend": () =>
    timed([berth, "--backend", "socket", "call", "execute_docker_container", `image=${image}`, `command=sh -c '${command}'`]),
  "berth call, cli backend": () =>
    timed([berth, "--backend", "cli", "call", "execute_docker_container", `image=${image}`, `command=sh -c '${command}'`]),
};
const servers = { "MCP tools/call, socket backend": mcpServer("socket"), "MCP tools/call, cli backend": mcpServer("cli") };
for (const s of Object.values(servers)) await s.init();

const samples = Object.fromEntries([...Object.keys(lanes), ...Object.keys(servers)].map((k) => [k, []]));
// One warm-up round, not counted: first runs pay for caches.
for (const f of Object.values(lanes)) f();
for (const s of Object.values(servers)) await s.call();
for (let i = 0; i < iterations; i++) {
  for (const [k, f] of Object.entries(lanes)) samples[k].push(f());
  for (const [k, s] of Object.entries(servers)) samples[k].push(await s.call());
}
for (const s of Object.values(servers)) await s.close();

const base = median(samples["docker run --rm (baseline)"]);
console.log(`berth benchmark: ${iterations} interleaved runs of \`${command}\` in ${image}`);
console.log("lane".padEnd(34) + "median ms".padStart(10) + "ratio".padStart(8));
for (const [k, xs] of Object.entries(samples)) {
  const m = median(xs);
  console.log(k.padEnd(34) + m.toFixed(1).padStart(10) + (m / base).toFixed(2).padStart(8));
}
