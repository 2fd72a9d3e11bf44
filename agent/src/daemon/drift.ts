/**
 * The daemon's cheap look at the node between installs: would install change containerd's
 * config (the handler vanished: k3s re-rendered it, an admin edited it), are the payload files
 * still there, and does the CRI still report the handler. Reads only; no lock, no ledger
 * write. Also the one repair install cannot do: restarting containerd when its config is right
 * but the running containerd does not have the handler.
 */
import * as fs from "node:fs";
import type { ContainerdLayout } from "../containerd/config/layout";
import { ConfigError } from "../containerd/config/config";
import { type AdoptedRuntime, planRegister, rewrittenCopies } from "../containerd/config/plan";
import type { RestartResult } from "../containerd/control/restart";
import { collectConfigFiles, type HostFiles } from "../containerd/config/snapshot";
import { CriChannel, type CriStatus, waitForHandler } from "../cri/client";
import { AgentError, ExitCode, messageOf } from "../lib/errors";
import { decodeHostText } from "../host/hostText";
import { hostFilePath, hostPath } from "../host/paths";
import type { InstallerOptions } from "../installer/installer";
import {
  handlerSpec,
  planCniChain,
  resolveLayout,
  restartContainerdFor,
  verifyWait,
} from "../installer/installer";
import { effectiveConfig, type EffectiveConfig } from "../containerd/config/effective";
import { withHostLock } from "../host/lock";
import type { Logger } from "../lib/log";
import type { CriView, DriftReport } from "./reconcile";

/** Per CRI call in a drift check: a reconcile pass must not hang on a stuck containerd. */
const CRI_TIMEOUT_MS = 3000;

/** A drift report and the layout it was read with (a restart needs it). */
export type NodeLook = DriftReport & { layout: ContainerdLayout };

/**
 * Remembers the last config snapshot that needed no change, so a pass over unchanged files
 * skips the TOML parsing and planning (the steady state, once per interval).
 */
export class DriftChecker {
  private cleanSnapshot: string | undefined;
  /** The effective config of the last snapshot read, for the CNI settings. */
  private effective: { key: string; config: EffectiveConfig } | undefined;
  private readonly io: HostFiles;
  /** The CRI channel of the socket last looked at, kept open between passes. */
  private cri: CriChannel | undefined;

  constructor(private readonly o: InstallerOptions) {
    this.io = hostFilesSync(o.hostRoot);
  }

  /**
   * `artifacts`: host paths of the payload files the ledger records; `recorded`: the runtime
   * table the ledger says the agent registered. A copy of it another tool rewrote without the
   * agent's block (nvidia-ctk, `containerd config migrate`) is re-adopted by the repair, as
   * install does; a changed one (or any config install would refuse, once there is a record)
   * is a `configProblem`, which the daemon refuses to touch.
   */
  async check(artifacts: readonly string[], recorded?: AdoptedRuntime): Promise<NodeLook> {
    const layout = resolveLayout(this.o);
    const files = await collectConfigFiles(layout, this.io);
    const spec = handlerSpec(this.o);
    const adopt = recorded?.name === spec.name ? recorded : undefined;
    const key = JSON.stringify([files, adopt ?? null]);
    let configChanges: string[] = [];
    let rewritten: string[] = [];
    let configProblem: string | undefined;
    if (key !== this.cleanSnapshot) {
      try {
        configChanges = planRegister(layout, files, spec, adopt).map(
          (c) => `${c.path}: ${c.purpose}`,
        );
        if (configChanges.length > 0) rewritten = rewrittenCopies(layout, files, adopt);
      } catch (err) {
        // The config cannot take the handler as install writes it (a table the agent does not
        // own, a file that no longer parses): install would refuse too. After an install (the
        // ledger has a record) that is drift the node must show; before one, install has
        // already said why it failed, and the pass is a reconcile error as before.
        if (!(err instanceof ConfigError) || adopt === undefined) throw err;
        configProblem = err.message;
      }
      this.cleanSnapshot =
        configChanges.length === 0 && configProblem === undefined ? key : undefined;
    }
    if (this.o.payloadDir !== undefined) {
      // The host's CNI plugin may rewrite its network config at any time (or write it only
      // now): the handler's chain follows it.
      if (this.effective?.key !== key) {
        this.effective = { key, config: effectiveConfig(layout, files) };
      }
      const chain = await planCniChain(
        this.o,
        this.effective.config,
        this.io.readFile,
        this.io.listDir,
      );
      if (chain !== null) configChanges.push(`${chain.path}: ${chain.purpose}`);
    }
    const missingArtifacts: string[] = [];
    for (const a of artifacts) {
      if (!fs.existsSync(hostPath(this.o.hostRoot, a))) missingArtifacts.push(a);
    }
    // --verify none: the operator vouches for containerd; the CRI may not even be reachable.
    const cri: CriView =
      this.o.verify === "none"
        ? { state: "live" }
        : await criView(
            this.channel(hostPath(this.o.hostRoot, layout.socket)),
            this.o.handler.name,
          );
    return {
      layout,
      configChanges,
      missingArtifacts,
      cri,
      ...(rewritten.length > 0 ? { rewritten } : {}),
      ...(configProblem !== undefined ? { configProblem } : {}),
    };
  }

  private channel(socket: string): CriChannel {
    if (this.cri?.socket !== socket) {
      this.cri?.close();
      this.cri = new CriChannel(socket);
    }
    return this.cri;
  }

  /** Closes the kept CRI channel. */
  close(): void {
    this.cri?.close();
    this.cri = undefined;
  }
}

/**
 * Host files read synchronously: a pass reads a few small config files once a second, and the
 * thread pool round trips of fs/promises (open, stat, read, close each) cost more CPU than the
 * reads themselves.
 */
function hostFilesSync(hostRoot: string): HostFiles {
  const orNull = <T>(fn: () => T): T | null => {
    try {
      return fn();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return null;
      throw err;
    }
  };
  return {
    readFile: async (p) => orNull(() => decodeHostText(fs.readFileSync(hostFilePath(hostRoot, p)))),
    listDir: async (p) => orNull(() => fs.readdirSync(hostFilePath(hostRoot, p))),
  };
}

/** One CRI Status call, no retries: the next pass looks again. */
export async function criView(cri: CriChannel, handler: string): Promise<CriView> {
  const socket = cri.socket;
  let status: CriStatus;
  try {
    status = await cri.status({ timeoutMs: CRI_TIMEOUT_MS });
  } catch (err) {
    return { state: "unreachable", reason: messageOf(err) };
  }
  if (!status.ready) {
    const cond = status.conditions.find((c) => c.type === "RuntimeReady");
    return {
      state: "not-ready",
      reason: `containerd on ${socket} answers but its runtime is not ready${cond ? `: ${`${cond.reason} ${cond.message}`.trim()}` : ""}.`,
    };
  }
  return status.handlers.includes(handler)
    ? { state: "live" }
    : { state: "missing", handlers: status.handlers };
}

/**
 * Restarts containerd so it loads the config that already registers the handler, then
 * verifies the handler through the CRI. Under the host lock, like install. Throws an
 * AgentError when the strategy is `none` (the agent may not restart containerd) or the
 * handler is still missing afterwards.
 */
export async function restartForDrift(
  o: InstallerOptions,
  layout: ContainerdLayout,
  log: Logger,
): Promise<RestartResult> {
  if (o.restart.strategy === "none") {
    throw new AgentError(
      `containerd runs without runtime handler "${o.handler.name}" although its config registers it, and --restart none forbids the restart that would load it.`,
      ExitCode.Failure,
    );
  }
  return withHostLock(
    o.hostRoot,
    async () => {
      const r = await restartContainerdFor(o, layout);
      log.info({ phase: "restart", durationMs: r.durationMs, ...r.phases }, r.detail);
      const check = await waitForHandler(
        hostPath(o.hostRoot, layout.socket),
        o.handler.name,
        verifyWait(o),
      );
      if (!check.live) {
        throw new AgentError(
          `containerd was restarted, but ${check.reason.replace(/\.$/, "")}.`,
          ExitCode.VerificationFailed,
        );
      }
      return r;
    },
    { timeoutMs: o.lockTimeoutMs ?? 60_000, stateDir: o.stateDir, logger: log },
  );
}
