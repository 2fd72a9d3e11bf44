/**
 * Temp host roots and child-process runners for the agent's state tests (fsAtomic, ledger,
 * lock, artifacts): each test gets a fresh directory standing in for `--host-root`.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";

/** A fresh empty directory to use as `--host-root`. */
export function makeHostRoot(prefix = "vnode-host-"): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

export function removeHostRoot(root: string): Promise<void> {
  return fsp.rm(root, { recursive: true, force: true });
}

/** Writes `content` at host path `p` under `root`, creating dirs. */
export async function putHostFile(
  root: string,
  p: string,
  content: string | Buffer,
  mode = 0o644,
): Promise<string> {
  const full = path.join(root, p);
  await fsp.mkdir(path.dirname(full), { recursive: true });
  await fsp.writeFile(full, content);
  await fsp.chmod(full, mode);
  return full;
}

/** Every file under `dir`, relative, sorted (dirs excluded). */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out.push(path.relative(dir, full));
    }
  };
  walk(dir);
  return out.sort();
}

export interface ChildResult {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Path of a TypeScript script under test/support, run with tsx in a child node process. */
export function supportScript(name: string): string {
  return path.join(__dirname, name);
}

/** Starts `node --import tsx <script> ...args` from the repo root. */
export function startTsChild(script: string, args: string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: path.join(__dirname, "..", ".."),
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs a TypeScript child to its end and collects its output. */
export function runTsChild(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<ChildResult> {
  const child = startTsChild(script, args, env);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({ pid: child.pid ?? -1, code, signal, stdout, stderr }),
    );
  });
}
