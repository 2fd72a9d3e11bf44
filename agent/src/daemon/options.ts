/**
 * The flags of `vnode-agent run` (on top of the installer's) turned into the daemon's options.
 * Pure apart from reading a token file; every bad value names its flag (or env var).
 */
import * as fs from "node:fs";
import { NODE_NAME_ENV, POD_NAMESPACE_ENV } from "vnode-contract";
import { badInput } from "../lib/errors";
import { parseDuration } from "../lib/duration";
import { type ListenAddress, parseListen } from "./health";
import type { InstallerOptions } from "../installer/installer";

/** The `run` flags as commander hands them over. */
export interface RunFlags {
  listen: string;
  interval: string;
  daemonset?: string;
  namespace?: string;
  runtimeClasses?: string;
  managerCommand?: string;
  forceUninstall?: boolean;
  maxRestarts: string;
  restartWindow: string;
  uninstallPodWait: string;
  kubeApiServer?: string;
  kubeTokenFile?: string;
}

export const RUN_DEFAULTS = {
  listen: ":8090",
  interval: "30s",
  maxRestarts: "3",
  restartWindow: "10m",
  uninstallPodWait: "30s",
} as const;

export interface DaemonOptions {
  node: string;
  installer: InstallerOptions;
  listen: ListenAddress;
  intervalMs: number;
  /** The agent's own DaemonSet; null: cannot tell a removal, so SIGTERM never uninstalls. */
  daemonSet: { namespace: string; name: string } | null;
  /** RuntimeClass names that use the handler; null: recognised by name (see shutdown.ts). */
  runtimeClasses: readonly string[] | null;
  managerCommand: string | null;
  forceUninstall: boolean;
  /** containerd restarts allowed per window before the daemon goes `failed`. */
  maxRestarts: number;
  restartWindowMs: number;
  /** How long SIGTERM waits for vNode pods on the node to go before refusing to uninstall. */
  uninstallPodWaitMs: number;
}

/** The node the agent runs on (downward API), required. */
export function nodeNameOf(env: Readonly<Record<string, string | undefined>>): string {
  const node = env[NODE_NAME_ENV]?.trim();
  if (!node) {
    throw badInput(
      `${NODE_NAME_ENV} must name the node the agent runs on (the DaemonSet sets it from spec.nodeName); it is unset.`,
    );
  }
  return node;
}

export function daemonOptions(
  f: RunFlags,
  env: Readonly<Record<string, string | undefined>>,
  installer: InstallerOptions,
): DaemonOptions {
  const namespace = f.namespace ?? env[POD_NAMESPACE_ENV];
  if (f.daemonset !== undefined && !namespace) {
    throw badInput(
      `--daemonset ${f.daemonset} needs its namespace: --namespace NAME or ${POD_NAMESPACE_ENV}.`,
    );
  }
  const maxRestarts = Number(f.maxRestarts);
  if (!/^\d+$/.test(f.maxRestarts.trim()) || !Number.isSafeInteger(maxRestarts)) {
    throw badInput(`--max-restarts must be an integer >= 0; got ${JSON.stringify(f.maxRestarts)}.`);
  }
  const classes = f.runtimeClasses
    ?.split(",")
    .map((c) => c.trim())
    .filter((c) => c.length > 0);
  if (classes !== undefined && classes.length === 0) {
    throw badInput("--runtime-classes must list at least one RuntimeClass name.");
  }
  const managerCommand = f.managerCommand?.trim();
  if (f.managerCommand !== undefined && !managerCommand) {
    throw badInput("--manager-command must not be empty.");
  }
  return {
    node: nodeNameOf(env),
    installer,
    listen: parseListen(f.listen),
    intervalMs: parseDuration("--interval", f.interval, 100),
    daemonSet: f.daemonset === undefined ? null : { namespace: namespace!, name: f.daemonset },
    runtimeClasses: classes ?? null,
    managerCommand: managerCommand ?? null,
    forceUninstall: f.forceUninstall === true,
    maxRestarts,
    restartWindowMs: parseDuration("--restart-window", f.restartWindow, 1000),
    uninstallPodWaitMs: parseDuration("--uninstall-pod-wait", f.uninstallPodWait),
  };
}

/**
 * The API server: `--kube-api-server` (with `--kube-token-file`) for tests and runs outside a
 * cluster, else the pod's service account (in-cluster).
 */
export function kubeServerOf(f: RunFlags): { url: string; token?: string } | undefined {
  if (f.kubeApiServer === undefined) {
    if (f.kubeTokenFile !== undefined) {
      throw badInput("--kube-token-file is only used with --kube-api-server.");
    }
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(f.kubeApiServer);
  } catch {
    throw badInput(
      `--kube-api-server must be an http(s) URL; got ${JSON.stringify(f.kubeApiServer)}.`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw badInput(
      `--kube-api-server must be an http(s) URL; got ${JSON.stringify(f.kubeApiServer)}.`,
    );
  }
  if (f.kubeTokenFile === undefined) return { url: f.kubeApiServer };
  let token: string;
  try {
    token = fs.readFileSync(f.kubeTokenFile, "utf8").trim();
  } catch (err) {
    throw badInput(
      `--kube-token-file ${f.kubeTokenFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`,
    );
  }
  return { url: f.kubeApiServer, token };
}
