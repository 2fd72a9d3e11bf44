/**
 * `npm run bench:agent`: the installer against a real containerd 1.6 (private, as in the tests),
 * measured in one run so the numbers are comparable:
 *   (a) `install` wall time next to the bare cost of one containerd restart plus a CRI Status, and
 *       the agent's own restart + CRI wait + verify phases next to that same bare cost;
 *   (b) a no-op rerun: wall time and containerd restarts;
 *   (c) peak RSS of the agent process;
 *   (d) cold start of `vnode-agent --version` next to `node -e 0`.
 * Needs root and Debian's containerd + runc (what `.ci/run` installs). Run `npm run build` first.
 * BENCH_ROUNDS (default 5) sets the rounds; BENCH_CLI another bundle to measure.
 */
import { execFile, execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { criStatus } from "../agent/src/cri/client";
import { agentHost } from "../test/support/agentHost";
import {
  containerdUnavailable,
  startContainerd,
  type TestContainerd,
} from "../test/support/containerd";
import { median } from "./stats";

// BENCH_CLI: another build of the agent to measure (e.g. an older commit's), same harness.
const CLI = path.resolve(
  process.env.BENCH_CLI ?? path.join(__dirname, "../agent/dist/vnode-agent.js"),
);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

/** The agent's own timings of one run, from the `durationMs` of its JSON log lines (ms). */
interface Phases {
  /** Lock taken -> config and payload written (ledger, plan, preflight, writes). */
  write: number;
  /** The containerd restart, waiting for the CRI included (0 when not restarted). */
  restart: number;
  /** Of `restart`: the restart command itself, and the wait for CRI Version after it. */
  restartCommand: number;
  restartCri: number;
  /** CRI Status until the handler is reported live (0 with --verify none). */
  verify: number;
  /** Lock taken -> done. */
  install: number;
}

function phasesOf(stderr: string): Phases {
  const ms: Record<string, number> = {};
  let restartCommand = 0;
  let restartCri = 0;
  for (const line of stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    const l = JSON.parse(line) as {
      phase?: string;
      durationMs?: number;
      restartMs?: number;
      criMs?: number;
    };
    if (l.phase && typeof l.durationMs === "number") ms[l.phase] = l.durationMs;
    if (l.phase === "restart") {
      restartCommand = l.restartMs ?? NaN;
      restartCri = l.criMs ?? NaN;
    }
  }
  return {
    write: ms.write ?? NaN,
    restart: ms.restart ?? 0,
    restartCommand,
    restartCri,
    verify: ms.verify ?? 0,
    install: ms.install ?? NaN,
  };
}

/**
 * The floor of a restart: the harness's restart script (what the agent runs as its
 * --restart-command), then CRI Status every millisecond until the runtime is ready. No backoff of
 * the agent's is involved, so the agent's restart + CRI wait + verify is measured against it.
 */
async function bareRestart(ctrd: TestContainerd): Promise<number> {
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) =>
    execFile(ctrd.restartScript, ["restart"], (err) => (err ? reject(err) : resolve())),
  );
  for (;;) {
    const s = await criStatus(ctrd.socket).catch(() => null);
    if (s?.ready) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Runs the CLI once; returns wall ms and the process's peak RSS (MiB) from resourceUsage. */
function runCli(args: string[]): { ms: number; rssMiB: number; stdout: string; phases: Phases } {
  const rssFile = path.join(os.tmpdir(), `vnode-bench-rss-${process.pid}`);
  const hook = `${rssFile}.js`;
  fs.writeFileSync(
    hook,
    `process.on("exit", () => require("fs").writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));`,
  );
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ["--require", hook, CLI, ...args], { encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`vnode-agent ${args[0]} exited ${r.status}: ${r.stderr}`);
  const rssMiB = Number(fs.readFileSync(rssFile, "utf8")) / 1024;
  return { ms, rssMiB, stdout: r.stdout, phases: phasesOf(r.stderr) };
}

function timeMs(cmd: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  execFileSync(cmd, args, { stdio: "ignore" });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  const why = containerdUnavailable();
  if (why) throw new Error(`bench:agent needs a real containerd: ${why}.`);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing; run npm run build first.`);
  const ctrd = await startContainerd();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-bench-"));
  try {
    const { flags } = agentHost(ctrd, work);

    const bare: number[] = [];
    const installs: number[] = [];
    const noops: number[] = [];
    const rss: number[] = [];
    const installPhases: (Phases & { wall: number })[] = [];
    const noopPhases: (Phases & { wall: number })[] = [];
    let noopRestarts = 0;
    for (let i = 0; i < ROUNDS; i++) {
      // The floor: what any installer must pay, one restart and a CRI Status that says ready.
      bare.push(await bareRestart(ctrd));

      const inst = runCli(["install", ...flags]);
      installs.push(inst.ms);
      installPhases.push({ ...inst.phases, wall: inst.ms });
      rss.push(inst.rssMiB);
      const pid = ctrd.pid;
      const noop = runCli(["install", ...flags]);
      noops.push(noop.ms);
      noopPhases.push({ ...noop.phases, wall: noop.ms });
      rss.push(noop.rssMiB);
      if (ctrd.pid !== pid || !noop.stdout.includes("not restarted")) noopRestarts++;
      runCli(["uninstall", ...flags]);
    }
    const nodeStart: number[] = [];
    const agentStart: number[] = [];
    for (let i = 0; i < ROUNDS * 2; i++) {
      nodeStart.push(timeMs(process.execPath, ["-e", "0"]));
      agentStart.push(timeMs(process.execPath, [CLI, "--version"]));
    }

    const ratio = median(installs) / median(bare);
    const ownRestart = installPhases.map((p) => p.restart + p.verify);
    const restartRatio = median(ownRestart) / median(bare);
    const startRatio = median(agentStart) / median(nodeStart);
    const rows: [string, string, string, string][] = [
      ["(a) install wall time", `${median(installs).toFixed(0)} ms`, "", ""],
      ["    bare restart + CRI Status", `${median(bare).toFixed(0)} ms`, "", ""],
      ["    ratio install / bare", ratio.toFixed(2), "<= 1.5", ratio <= 1.5 ? "met" : "MISSED"],
      ["    agent restart + CRI wait + verify", `${median(ownRestart).toFixed(0)} ms`, "", ""],
      [
        "    ratio agent restart / bare",
        restartRatio.toFixed(2),
        "<= 1.2",
        restartRatio <= 1.2 ? "met" : "MISSED",
      ],
      [
        "(b) no-op rerun wall time",
        `${median(noops).toFixed(0)} ms`,
        "<= 300 ms",
        median(noops) <= 300 ? "met" : "MISSED",
      ],
      [
        "    no-op reruns that restarted",
        `${noopRestarts}/${ROUNDS}`,
        "0",
        noopRestarts === 0 ? "met" : "MISSED",
      ],
      [
        "(c) peak RSS of the agent",
        `${Math.max(...rss).toFixed(1)} MiB`,
        "<= 80 MiB",
        Math.max(...rss) <= 80 ? "met" : "MISSED",
      ],
      ["(d) vnode-agent --version", `${median(agentStart).toFixed(0)} ms`, "", ""],
      ["    node -e 0", `${median(nodeStart).toFixed(0)} ms`, "", ""],
      ["    ratio", startRatio.toFixed(2), "<= 2", startRatio <= 2 ? "met" : "MISSED"],
    ];
    console.log(
      `bench:agent, containerd ${execFileSync("containerd", ["--version"], { encoding: "utf8" }).split(" ")[2]}, ${os.cpus().length} CPUs, median of ${ROUNDS} rounds`,
    );
    const w = [36, 12, 10, 6];
    console.log(["measure", "value", "target", ""].map((c, i) => c.padEnd(w[i])).join("  "));
    for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join("  "));

    // Where the agent's wall time goes (not a target): its own phase timings, median per phase.
    const fmt = (xs: number[]) => `${median(xs).toFixed(0)} ms`;
    const split = (runs: (Phases & { wall: number })[]) => [
      fmt(runs.map((r) => r.wall - r.install)),
      fmt(runs.map((r) => r.write)),
      fmt(runs.map((r) => r.restart)),
      fmt(runs.map((r) => r.restartCommand)),
      fmt(runs.map((r) => r.restartCri)),
      fmt(runs.map((r) => r.verify)),
      fmt(runs.map((r) => r.install - r.write - r.restart - r.verify)),
      fmt(runs.map((r) => r.wall - r.restart)),
    ];
    const pw = [36, 12, 12];
    console.log(
      `\nagent phases, median of ${ROUNDS} runs`.padEnd(pw[0] + 2) + "install       no-op",
    );
    const labels = [
      "node start, load, lock, exit",
      "ledger, plan, preflight, writes",
      "containerd restart + CRI wait",
      "  of which the restart command",
      "  of which CRI Version answering",
      "verify: CRI Status, handler live",
      "restart module load, other",
      "fixed cost: wall minus restart",
    ];
    const a = split(installPhases);
    const b = split(noopPhases);
    labels.forEach((l, i) =>
      console.log([l, a[i], b[i]].map((c, j) => c.padEnd(pw[j])).join("  ")),
    );
  } finally {
    await ctrd.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
