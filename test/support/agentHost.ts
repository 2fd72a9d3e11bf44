/**
 * The agent against a harness containerd (test/support/containerd.ts), as the CLI tests and the
 * benchmarks run it: host root `/`, the harness's config and socket, private install, state and
 * CNI dirs, and a stand-in vNode payload laid out like the real one: one multi-call program
 * (`vnode-standin`) and the three role names as symlinks to it.
 *
 * The stand-in acts by argv[0], as vNode's binary does (vNode's architecture page), and appends
 * one JSON line per call to `record` (role, args, VNODE_PER_POD, CNI_COMMAND):
 * - `containerd-shim-vnode-v2`: execs Debian's runc shim, so a sandbox on the `vnode` handler
 *   really runs through the installed link. (The real shim only hands containerd the running
 *   manager's socket path; containerd then talks the same shim v2 API to it, so to containerd
 *   the stand-in is indistinguishable: `--runtime-type io.containerd.runc.v2` lets the runc
 *   shim read its options.)
 * - `vnode-cni`: a CNI plugin that returns its `prevResult` unchanged (the real one moves the
 *   network namespace into the vNode user namespace, which needs the real manager);
 * - `vnode-manager`: a long-running process that prints VNODE_PER_POD; with
 *   {@link StandInOptions.managerSocket} it also listens on that unix socket (where the shim
 *   would find it) and records each start, with its environment, in `managerRecord`.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PAYLOAD_ROLES } from "vnode-contract";
import type { TestContainerd } from "./containerd";

/** The stand-in multi-call binary's file name, in the payload and in the install dir. */
export const STAND_IN_BINARY = "vnode-standin";
/** The file name containerd runs as the shim (a link to the stand-in). */
export const STAND_IN_SHIM = PAYLOAD_ROLES.shim;

export interface AgentHost {
  payload: string;
  installDir: string;
  stateDir: string;
  /** The vNode handler's CNI conf dir (`--cni-conf-dir`). */
  cniConfDir: string;
  /** JSON lines, one per call of the stand-in (and of the host CNI stand-in). */
  record: string;
  /** The installer flags every command shares. */
  flags: string[];
}

/** One call of a stand-in, as recorded. */
export interface StandInCall {
  role: string;
  args: string[];
  perPod: string | null;
  cniCommand: string | null;
  containerId: string | null;
}

function which(bin: string): string {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/bin", "/usr/sbin"]) {
    const p = path.join(dir, bin);
    if (dir && fs.existsSync(p)) return p;
  }
  throw new Error(`${bin} is not installed (Debian package containerd)`);
}

/** Where the stand-in runs and what its manager role does beyond sleeping. */
export interface StandInOptions {
  /**
   * The interpreter line: the test's own node binary by default; `/usr/bin/env node` when the
   * stand-in also runs inside a container image (the manager role in the agent's pod).
   */
  interpreter?: string;
  /** The manager role listens on this unix socket (a path as the manager sees it). */
  managerSocket?: string;
  /** The manager role appends one JSON line per start here (a path as the manager sees it). */
  managerRecord?: string;
}

/** One start of the stand-in manager, as it recorded it. */
export interface ManagerStart {
  /** 1 for the first start recorded in this file, 2 for the next, ... */
  start: number;
  /** Its pid in its own PID namespace. */
  pid: number;
  /** Its whole environment. */
  env: Record<string, string>;
}

/**
 * A multi-call program in Node, acting by argv[0]; linked as `host-net` and `loopback` (which
 * make a CNI result) or any other name (which passes the previous result on, like a chained
 * plugin) it is the host network's CNI plugins too.
 */
export function standInScript(record: string, runcShim: string, opts: StandInOptions = {}): string {
  const q = JSON.stringify;
  return `#!${opts.interpreter ?? process.execPath}
const fs = require("node:fs");
const path = require("node:path");
const role = path.basename(process.argv[1]);
const args = process.argv.slice(2);
const env = process.env;
const note = () => fs.appendFileSync(${q(record)}, JSON.stringify({
  role, args, perPod: env.VNODE_PER_POD ?? null, cniCommand: env.CNI_COMMAND ?? null,
  containerId: env.CNI_CONTAINERID ?? null,
}) + "\\n");
const stdin = () => { try { return fs.readFileSync(0, "utf8"); } catch { return ""; } };
const versions = '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}';
if (role === ${q(PAYLOAD_ROLES.shim)}) {
  if (args.includes("start")) note();
  const r = require("node:child_process").spawnSync(${q(runcShim)}, args, { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
if (role === ${q(PAYLOAD_ROLES.manager)}) {
  const managerRecord = ${q(opts.managerRecord ?? null)};
  const managerSocket = ${q(opts.managerSocket ?? null)};
  if (managerRecord === null) note();
  else {
    let start = 1;
    try { start += fs.readFileSync(managerRecord, "utf8").split("\\n").filter(Boolean).length; } catch {}
    fs.appendFileSync(managerRecord, JSON.stringify({ start, pid: process.pid, env }) + "\\n");
  }
  console.log("vnode-manager stand-in: VNODE_PER_POD=" + (env.VNODE_PER_POD ?? ""));
  let server;
  if (managerSocket !== null) {
    fs.rmSync(managerSocket, { force: true });
    server = require("node:net").createServer((c) => c.end()).listen(managerSocket);
  } else setInterval(() => {}, 60_000);
  process.on("SIGTERM", () => { if (server) server.close(); process.exit(0); });
} else {
  // A CNI plugin: host-net and loopback make a result; any other (vnode-cni) passes it on.
  const conf = JSON.parse(stdin() || "{}");
  note();
  if (env.CNI_COMMAND === "VERSION") { process.stdout.write(versions); process.exit(0); }
  if (env.CNI_COMMAND !== "ADD") process.exit(0);
  const ifname = role === "loopback" ? "lo" : env.CNI_IFNAME;
  const ip = role === "loopback" ? "127.0.0.1/8" : "10.88.0.7/16";
  const made = { cniVersion: conf.cniVersion, interfaces: [{ name: ifname, sandbox: env.CNI_NETNS }],
    ips: [{ ${"version"}: "4", address: ip, interface: 0 }] };
  if (conf.cniVersion !== "0.3.0" && conf.cniVersion !== "0.3.1" && conf.cniVersion !== "0.4.0") delete made.ips[0].version;
  const makes = role === "host-net" || role === "loopback";
  process.stdout.write(JSON.stringify(makes ? made : conf.prevResult));
}
`;
}

/** Reads the stand-in's record. */
export function standInCalls(record: string): StandInCall[] {
  if (!fs.existsSync(record)) return [];
  return fs
    .readFileSync(record, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StandInCall);
}

/** Reads the stand-in manager's record of its starts. */
export function managerStarts(record: string): ManagerStart[] {
  if (!fs.existsSync(record)) return [];
  return fs
    .readFileSync(record, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ManagerStart);
}

/** Lays out the payload and dirs under `work` and returns the flags for `ctrd`. */
export function agentHost(ctrd: TestContainerd, work: string): AgentHost {
  const payload = path.join(work, "payload");
  const installDir = path.join(work, "opt/vnode/bin");
  const stateDir = path.join(work, "state");
  const cniConfDir = path.join(work, "etc/vnode/cni/net.d");
  const record = path.join(work, "calls.jsonl");
  fs.mkdirSync(payload, { recursive: true });
  fs.writeFileSync(
    path.join(payload, STAND_IN_BINARY),
    standInScript(record, which("containerd-shim-runc-v2")),
    { mode: 0o755 },
  );
  for (const name of Object.values(PAYLOAD_ROLES)) {
    fs.symlinkSync(STAND_IN_BINARY, path.join(payload, name));
  }
  const flags = [
    ...["--host-root", "/", "--containerd-config", ctrd.configPath],
    ...["--containerd-socket", ctrd.socket, "--payload-dir", payload],
    ...["--install-dir", installDir, "--state-dir", stateDir, "--cni-conf-dir", cniConfDir],
    ...["--runtime-type", "io.containerd.runc.v2"],
    ...["--restart", "command", "--restart-command", ctrd.restartScript],
    // This sandbox has hybrid cgroups and Debian's containerd 1.6; real nodes get all checks.
    ...["--skip-preflight", "cgroup", "--min-containerd", "1.6"],
  ];
  return { payload, installDir, stateDir, cniConfDir, record, flags };
}

/** The agent bundle `npm run build` writes, as the image runs it. */
export const AGENT_CLI = path.resolve(__dirname, "../../agent/dist/vnode-agent.js");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the bundled agent on node `test-node` and resolves with its exit code and output. */
export async function runAgentCli(args: string[]): Promise<CliResult> {
  if (!fs.existsSync(AGENT_CLI))
    throw new Error(`${AGENT_CLI} is missing; run npm run build first.`);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [AGENT_CLI, ...args],
      { env: { ...process.env, NODE_NAME: "test-node" } },
      (err, stdout, stderr) => {
        const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
