/**
 * The host lock: serialises agents on one node (a DaemonSet pod and an operator's CLI run,
 * or the old and new pod of a rollout), which share the host filesystem but not a PID
 * namespace.
 *
 * The lock is a file created with O_EXCL (`wx`) under the state dir, holding who owns it. A
 * holder that died leaves the file behind; it is stale when
 *   - the holder is on our host (same hostname, so same PID namespace) and its pid is not
 *     running, or runs a different process (pid reused: its start time differs), or
 *   - the holder is elsewhere (we cannot see its pid) and has not refreshed the file's mtime
 *     for `staleAfterMs` (holders refresh it every third of that).
 * Takeovers go through a second, short-lived mutex (a `mkdir`) and delete the stale file only
 * if it is still the one judged stale, so two waiters cannot both take over.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { AGENT_DEFAULTS } from "vnode-contract";
import { errno } from "./fsAtomic";
import { hostPath } from "./paths";
import { sleep } from "../lib/backoff";
import { defaultLogger, type Logger } from "../lib/log";

export const LOCK_FILE = "agent.lock";

/** Contents of the lock file. */
export interface LockHolder {
  pid: number;
  hostname: string;
  startedAt: string;
  /** The holder's start time in clock ticks after boot (/proc/<pid>/stat), to detect pid reuse. */
  pidStartTime: string | null;
  /** Random id of this acquisition, so release never deletes someone else's lock. */
  token: string;
}

export interface LockOptions {
  /** How long to wait for another holder. Defaults to 60000. */
  timeoutMs?: number;
  /** Host path of the state dir. Defaults to `AGENT_DEFAULTS.stateDir`. */
  stateDir?: string;
  /** Poll interval while waiting. Defaults to 100. */
  pollMs?: number;
  /** A holder we cannot check by pid is stale after this long without a refresh. Defaults to 30000. */
  staleAfterMs?: number;
  /** Defaults to the agent's default logger. */
  logger?: Logger;
}

/** Grace for a lock file whose holder has created it but not yet written its contents. */
const EMPTY_LOCK_GRACE_MS = 2000;
/** A takeover mutex older than this belongs to a waiter that died during a takeover. */
const TAKEOVER_MUTEX_STALE_MS = 10000;

/** What we know about a lock file we found, to judge it. */
export interface LockObservation {
  holder: LockHolder | null;
  /** Age of the file's mtime. */
  ageMs: number;
}

/** How to check a pid on this host. */
export interface ProcessProbe {
  hostname: string;
  alive(pid: number): boolean;
  startTime(pid: number): string | null;
}

/** Why the observed lock is stale, or null when its holder may still be working. Pure. */
export function staleReason(
  seen: LockObservation,
  probe: ProcessProbe,
  staleAfterMs: number,
): string | null {
  const { holder, ageMs } = seen;
  if (holder === null) {
    return ageMs > EMPTY_LOCK_GRACE_MS ? `lock file is unreadable and ${ageMs} ms old` : null;
  }
  if (holder.hostname === probe.hostname) {
    if (!probe.alive(holder.pid)) return `pid ${holder.pid} is not running`;
    const start = probe.startTime(holder.pid);
    if (holder.pidStartTime !== null && start !== null && start !== holder.pidStartTime) {
      return `pid ${holder.pid} now belongs to another process (start time ${start}, holder's ${holder.pidStartTime})`;
    }
    return null;
  }
  return ageMs > staleAfterMs
    ? `holder on host ${holder.hostname} has not refreshed the lock for ${ageMs} ms`
    : null;
}

/** Parses lock file contents; null when empty or not a lock holder. */
export function parseHolder(text: string): LockHolder | null {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (
      typeof v.pid === "number" &&
      typeof v.hostname === "string" &&
      typeof v.token === "string"
    ) {
      return {
        pid: v.pid,
        hostname: v.hostname,
        startedAt: String(v.startedAt),
        pidStartTime: typeof v.pidStartTime === "string" ? v.pidStartTime : null,
        token: v.token,
      };
    }
  } catch {
    // Unreadable: judged by age in staleReason.
  }
  return null;
}

/** Start time (field 22 of /proc/<pid>/stat) of a process, or null where unavailable. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm (field 2) may contain spaces and parens; fields after it start at 3.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[22 - 3] ?? null;
  } catch {
    return null;
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return errno(err) === "EPERM";
  }
}

const localProbe: ProcessProbe = {
  hostname: os.hostname(),
  alive: processAlive,
  startTime: processStartTime,
};

export function lockPath(hostRoot: string, stateDir: string = AGENT_DEFAULTS.stateDir): string {
  return hostPath(hostRoot, path.posix.join(stateDir, LOCK_FILE));
}

/** Locks this process holds, so a nested call fails fast instead of waiting for itself. */
const heldHere = new Set<string>();

/**
 * Runs `fn` while holding the host lock under `<hostRoot><stateDir>`. Waits up to
 * `timeoutMs` for another holder, takes over a stale lock (logged), and releases the lock
 * when `fn` settles, even when it throws. Not reentrant.
 */
export async function withHostLock<T>(
  hostRoot: string,
  fn: () => Promise<T>,
  opts: LockOptions = {},
): Promise<T> {
  const file = lockPath(hostRoot, opts.stateDir);
  if (heldHere.has(file)) {
    throw new Error(
      `host lock ${file} is already held by this process; withHostLock is not reentrant.`,
    );
  }
  heldHere.add(file);
  try {
    const staleAfterMs = opts.staleAfterMs ?? 30000;
    const holder = await acquire(file, opts, staleAfterMs);
    const heartbeat = setInterval(
      () => {
        const now = new Date();
        fsp.utimes(file, now, now).catch(() => undefined);
      },
      Math.max(10, Math.floor(staleAfterMs / 3)),
    );
    heartbeat.unref();
    try {
      return await fn();
    } finally {
      clearInterval(heartbeat);
      await release(file, holder, opts.logger ?? defaultLogger());
    }
  } finally {
    heldHere.delete(file);
  }
}

async function acquire(file: string, opts: LockOptions, staleAfterMs: number): Promise<LockHolder> {
  const timeoutMs = opts.timeoutMs ?? 60000;
  const pollMs = opts.pollMs ?? 100;
  const logger = opts.logger ?? defaultLogger();
  const deadline = Date.now() + timeoutMs;
  const me: LockHolder = {
    pid: process.pid,
    hostname: localProbe.hostname,
    startedAt: new Date().toISOString(),
    pidStartTime: processStartTime(process.pid),
    token: randomBytes(8).toString("hex"),
  };
  await fsp.mkdir(path.dirname(file), { recursive: true });
  let waitingLogged = false;
  for (;;) {
    if (await tryCreate(file, me)) return me;
    const seen = await observe(file);
    if (seen === null) continue; // released meanwhile
    const reason = staleReason(seen, localProbe, staleAfterMs);
    if (reason !== null) {
      if (await takeOver(file, seen)) {
        logger.warn(
          { phase: "lock", lock: file, staleHolder: seen.holder, reason },
          "took over a stale host lock",
        );
      }
      continue;
    }
    if (Date.now() >= deadline) {
      const h = seen.holder;
      const who = h
        ? `pid ${h.pid} on host ${h.hostname} since ${h.startedAt}`
        : "a holder that has not written it yet";
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for the host lock ${file}, held by ${who}; another vnode-agent is working on this node (delete the file only if it is not).`,
      );
    }
    if (!waitingLogged) {
      logger.info({ phase: "lock", lock: file, holder: seen.holder }, "waiting for the host lock");
      waitingLogged = true;
    }
    await sleep(pollMs);
  }
}

async function tryCreate(file: string, me: LockHolder): Promise<boolean> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, "wx", 0o644);
  } catch (err) {
    if (errno(err) === "EEXIST") return false;
    // An uninstall that just finished removes the empty state dir: make it again and retry.
    if (errno(err) !== "ENOENT") throw err;
    await fsp.mkdir(path.dirname(file), { recursive: true });
    return false;
  }
  try {
    // No fsync: the lock only has to hold while its holder lives. After a crash or power loss
    // every holder is gone, and whatever survives (no file, an empty one, a full one) is judged
    // stale by staleReason, so durability would buy nothing but a disk flush per run.
    await handle.writeFile(JSON.stringify(me) + "\n");
  } finally {
    await handle.close();
  }
  return true;
}

interface Observed extends LockObservation {
  raw: string;
  ino: number;
  mtimeMs: number;
}

async function observe(file: string): Promise<Observed | null> {
  try {
    const stat = await fsp.stat(file);
    const raw = await fsp.readFile(file, "utf8");
    return {
      holder: parseHolder(raw),
      ageMs: Math.max(0, Math.round(Date.now() - stat.mtimeMs)),
      raw,
      ino: stat.ino,
      mtimeMs: stat.mtimeMs,
    };
  } catch (err) {
    if (errno(err) === "ENOENT") return null;
    throw err;
  }
}

/** Deletes the lock file if it is still exactly the one judged stale; true if it did. */
async function takeOver(file: string, seen: Observed): Promise<boolean> {
  const mutex = `${file}.takeover`;
  try {
    await fsp.mkdir(mutex);
  } catch (err) {
    if (errno(err) !== "EEXIST") throw err;
    const stat = await fsp.stat(mutex).catch(() => null);
    if (stat && Date.now() - stat.mtimeMs > TAKEOVER_MUTEX_STALE_MS)
      await fsp.rmdir(mutex).catch(() => undefined);
    else await sleep(20);
    return false;
  }
  try {
    const again = await observe(file);
    if (
      again === null ||
      again.raw !== seen.raw ||
      again.ino !== seen.ino ||
      again.mtimeMs !== seen.mtimeMs
    ) {
      return false;
    }
    await fsp.unlink(file);
    return true;
  } finally {
    await fsp.rmdir(mutex).catch(() => undefined);
  }
}

async function release(file: string, me: LockHolder, logger: Logger): Promise<void> {
  const seen = await observe(file);
  if (seen?.holder?.token === me.token) {
    await fsp.unlink(file).catch((err: unknown) => {
      if (errno(err) !== "ENOENT") throw err;
    });
    return;
  }
  logger.warn(
    { phase: "lock", lock: file, holder: seen?.holder ?? null },
    "host lock was taken over while held",
  );
}
