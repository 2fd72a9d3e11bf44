/**
 * The agent against a harness containerd (test/support/containerd.ts), as the CLI tests and the
 * benchmarks run it: host root `/`, the harness's config and socket, private install and state
 * dirs, and a stand-in vNode payload, Debian's runc shim, registered under the `vnode` handler
 * through `runtime_path` so a sandbox really runs from the installed copy.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { TestContainerd } from "./containerd";

/** The stand-in shim's file name, in the payload and in the install dir. */
export const STAND_IN_SHIM = "containerd-shim-runc-v2";

export interface AgentHost {
  payload: string;
  installDir: string;
  stateDir: string;
  /** The installer flags every command shares. */
  flags: string[];
}

function which(bin: string): string {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/bin", "/usr/sbin"]) {
    const p = path.join(dir, bin);
    if (dir && fs.existsSync(p)) return p;
  }
  throw new Error(`${bin} is not installed (Debian package containerd)`);
}

/** Lays out the payload and dirs under `work` and returns the flags for `ctrd`. */
export function agentHost(ctrd: TestContainerd, work: string): AgentHost {
  const payload = path.join(work, "payload");
  const installDir = path.join(work, "opt/vnode/bin");
  const stateDir = path.join(work, "state");
  fs.mkdirSync(payload, { recursive: true });
  fs.copyFileSync(which(STAND_IN_SHIM), path.join(payload, STAND_IN_SHIM));
  const flags = [
    ...["--host-root", "/", "--containerd-config", ctrd.configPath],
    ...["--containerd-socket", ctrd.socket, "--payload-dir", payload],
    ...["--install-dir", installDir, "--state-dir", stateDir],
    ...["--runtime-type", "io.containerd.runc.v2"],
    ...["--runtime-path", path.join(installDir, STAND_IN_SHIM)],
    ...["--restart", "command", "--restart-command", ctrd.restartScript],
    // This sandbox has hybrid cgroups and Debian's containerd 1.6; real nodes get all checks.
    ...["--skip-preflight", "cgroup", "--min-containerd", "1.6"],
  ];
  return { payload, installDir, stateDir, flags };
}
