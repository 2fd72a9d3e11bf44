/**
 * Supervises the vNode runtime payload's manager process (`--manager-command`): starts it with
 * `VNODE_PER_POD` set explicitly, restarts it with capped exponential backoff whenever it exits,
 * reports every exit to the daemon (which turns it into an Event and a metric), and stops it
 * with SIGTERM, then SIGKILL after a grace period.
 *
 * The manager runs in its own process group, and signals go to the whole group: a `sh -c`
 * wrapper does not forward SIGTERM, so signalling only the shell would orphan the manager.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as readline from "node:readline";
import { VNODE_PER_POD_ENV } from "vnode-contract";
import { type BackoffPolicy, backoffDelay, sleep } from "../lib/backoff";
import { messageOf } from "../lib/errors";
import type { Logger } from "../lib/log";
import { encodePerPod, type IsolationMode } from "vnode-contract";

export interface ManagerExit {
  pid: number | undefined;
  /** Exit code, or null when a signal ended it or it never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why it could not be started (e.g. `spawn /opt/vnode/bin/manager ENOENT`). */
  error?: string;
  /** How long this run lasted. */
  runtimeMs: number;
  /** Exits so far, this one included. */
  exits: number;
  /** Delay before the next start; null when the supervisor is stopping (no restart). */
  restartInMs: number | null;
}

/** One sentence on an exit, for the daemon's Event message and log line. */
export function describeExit(exit: ManagerExit): string {
  const how =
    exit.error !== undefined
      ? `could not be started (${exit.error})`
      : exit.signal
        ? `was killed by ${exit.signal}`
        : `exited with code ${exit.code}`;
  const after = `after ${(exit.runtimeMs / 1000).toFixed(1)} s`;
  const next =
    exit.restartInMs === null
      ? "not restarting: the agent is stopping"
      : `restarting in ${(exit.restartInMs / 1000).toFixed(1)} s`;
  return `vNode manager (pid ${exit.pid ?? "none"}) ${how} ${after}, exit ${exit.exits}; ${next}.`;
}

/** Labels of the `vnode_agent_manager_exits_total` series for an exit. */
export function exitMetricLabels(exit: ManagerExit): { code: string; signal: string } {
  return { code: exit.code === null ? "" : String(exit.code), signal: exit.signal ?? "" };
}

export interface SupervisorOptions {
  /** A shell command (run with `sh -c`) or an argv (run directly). */
  command: string | readonly string[];
  /** Passed to the manager as `VNODE_PER_POD=true|false`, whatever the base env says. */
  mode: IsolationMode;
  /** Base environment. Defaults to the agent's. */
  env?: NodeJS.ProcessEnv;
  /** Restart delays. Defaults to 1 s doubling up to 60 s. */
  backoff?: BackoffPolicy;
  /** A run at least this long counts as healthy and resets the delay. Defaults to 60 s. */
  resetAfterMs?: number;
  /** Time between SIGTERM and SIGKILL on stop(). Defaults to 10 s. */
  graceMs?: number;
  onStart?: (pid: number, starts: number) => void;
  onExit?: (exit: ManagerExit) => void;
  /** Receives the manager's output; without it the output is discarded. */
  logger?: Logger;
}

const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 60_000, factor: 2 };
const GONE_POLL_MS = 50;
/** After SIGKILL the kernel needs only moments; a zombie nobody reaps would wait forever. */
const AFTER_KILL_WAIT_MS = 5000;

export class ManagerSupervisor {
  private child: ChildProcess | undefined;
  private childExited: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private started = false;
  private starts = 0;
  private exits = 0;
  /** Exits in a row that came before `resetAfterMs`: the backoff attempt. */
  private quickExits = 0;

  constructor(private readonly opts: SupervisorOptions) {
    const cmd = opts.command;
    if (typeof cmd === "string" ? cmd.trim() === "" : cmd.length === 0 || !cmd[0]) {
      throw new Error("--manager-command must not be empty.");
    }
    // Validate the policy now rather than at the first exit.
    backoffDelay(0, opts.backoff ?? DEFAULT_BACKOFF);
  }

  /** The running manager's pid, if one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the manager. Call once. */
  start(): void {
    if (this.started) throw new Error("the manager supervisor was already started.");
    this.started = true;
    this.spawnOnce();
  }

  /**
   * Stops supervising: cancels a pending restart, sends SIGTERM to the manager's process
   * group, SIGKILL after the grace period, and resolves when the group is gone. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.terminate();
    return this.stopping;
  }

  private spawnOnce(): void {
    const { command, mode } = this.opts;
    const [file, args] =
      typeof command === "string" ? ["sh", ["-c", command]] : [command[0], command.slice(1)];
    const env = { ...(this.opts.env ?? process.env), [VNODE_PER_POD_ENV]: encodePerPod(mode) };
    const logger = this.opts.logger;
    const startedAt = Date.now();
    const child = spawn(file, args, {
      env,
      stdio: ["ignore", logger ? "pipe" : "ignore", logger ? "pipe" : "ignore"],
      detached: true, // its own process group, see the file comment
    });
    this.child = child;
    this.starts++;

    let settled = false;
    let resolveExited!: () => void;
    this.childExited = new Promise((resolve) => (resolveExited = resolve));
    const finish = (code: number | null, signal: NodeJS.Signals | null, error?: string) => {
      if (settled) return;
      settled = true;
      resolveExited();
      this.onChildExit(child.pid, code, signal, error, Date.now() - startedAt);
    };
    child.once("exit", (code, signal) => finish(code, signal));
    // Spawn failures (ENOENT, EACCES) emit only "error"; a failed kill() emits it too, while
    // the process runs on, so only a child without a pid counts as ended here.
    child.on("error", (err) => {
      if (child.pid === undefined) finish(null, null, err.message);
    });

    if (child.pid !== undefined) {
      if (logger) {
        for (const stream of ["stdout", "stderr"] as const) {
          const lines = readline.createInterface({ input: child[stream]!, crlfDelay: Infinity });
          lines.on("line", (line) =>
            logger.info({ phase: "manager", stream, pid: child.pid }, line),
          );
        }
      }
      this.safely(() => this.opts.onStart?.(child.pid!, this.starts));
    }
  }

  private onChildExit(
    pid: number | undefined,
    code: number | null,
    signal: NodeJS.Signals | null,
    error: string | undefined,
    runtimeMs: number,
  ): void {
    this.child = undefined;
    this.exits++;
    let restartInMs: number | null = null;
    if (!this.stopping) {
      if (runtimeMs >= (this.opts.resetAfterMs ?? 60_000)) this.quickExits = 0;
      restartInMs = backoffDelay(this.quickExits, this.opts.backoff ?? DEFAULT_BACKOFF);
      this.quickExits++;
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (!this.stopping) this.spawnOnce();
      }, restartInMs);
    }
    const exit: ManagerExit = { pid, code, signal, runtimeMs, exits: this.exits, restartInMs };
    if (error !== undefined) exit.error = error;
    this.safely(() => this.opts.onExit?.(exit));
  }

  private async terminate(): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (!child || child.pid === undefined) return;
    const pgid = child.pid;
    const graceMs = this.opts.graceMs ?? 10_000;
    signalGroup(pgid, "SIGTERM");
    if (await this.waitGone(pgid, graceMs)) return;
    this.opts.logger?.warn(
      { phase: "manager", pid: pgid, graceMs },
      `manager still running ${graceMs} ms after SIGTERM; sending SIGKILL`,
    );
    signalGroup(pgid, "SIGKILL");
    if (!(await this.waitGone(pgid, AFTER_KILL_WAIT_MS))) {
      this.opts.logger?.warn(
        { phase: "manager", pid: pgid },
        "manager's process group still has live members after SIGKILL",
      );
    }
  }

  /** Waits until the manager has exited and nothing is left in its process group. */
  private async waitGone(pgid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const exited = this.childExited;
    if (exited) {
      const timedOut = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(true), timeoutMs);
          void exited.then(() => clearTimeout(t));
        }),
      ]);
      if (timedOut) return false;
    }
    while (groupAlive(pgid)) {
      if (Date.now() >= deadline) return false;
      await sleep(GONE_POLL_MS);
    }
    return true;
  }

  /** A throwing callback must not take the supervisor (or the daemon) down. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.logger?.warn(
        { phase: "manager", reason: messageOf(err) },
        "manager supervisor callback threw",
      );
    }
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/**
 * Whether a live (non-zombie) process is left in the group. Orphaned members are reaped by
 * whichever init adopts them, sometimes only after a second or more (or never, when the agent is
 * PID 1 of its container), so zombies count as gone: they hold no resources but a pid. Reads
 * /proc; where that is not possible, falls back to kill(-pgid, 0), which also sees zombies.
 */
function groupAlive(pgid: number): boolean {
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    return signalZeroAlive(pgid);
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z" && state !== "X") return true;
  }
  return false;
}

function signalZeroAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    // EPERM: members exist but belong to someone else; still alive.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
