/**
 * The parsed flags of `vnode-agent run` (on top of the installer's) turned into the daemon's
 * options: each value is already typed and checked by the CLI (cli/flags.ts), so this only joins
 * them with the env and checks how they combine. Pure apart from reading a token file; every
 * bad value names its flag (or env var).
 */
import * as fs from "node:fs";
import {
  type ListenAddress,
  NODE_NAME_ENV,
  POD_NAME_ENV,
  POD_NAMESPACE_ENV,
  type RunOptions,
} from "vnode-contract";
import { badInput, messageOf } from "../lib/errors";
import type { InstallerOptions } from "../installer/installer";

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
  /** Host path of the manager's unix socket; /readyz waits for a connect (null: not checked). */
  managerSocket: string | null;
  /** The manager's container in the agent's own pod, whose restarts are reported (null: none). */
  managerContainer: { namespace: string; pod: string; container: string } | null;
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
  f: RunOptions,
  env: Readonly<Record<string, string | undefined>>,
  installer: InstallerOptions,
): DaemonOptions {
  const namespace = f.namespace ?? env[POD_NAMESPACE_ENV];
  if (f.daemonset !== undefined && !namespace) {
    throw badInput(
      `--daemonset ${f.daemonset} needs its namespace: --namespace NAME or ${POD_NAMESPACE_ENV}.`,
    );
  }
  if (f.managerSocket !== undefined && !f.managerSocket.startsWith("/")) {
    throw badInput(
      `--manager-socket must be an absolute host path such as /run/vnode/manager.sock; got ${JSON.stringify(f.managerSocket)}.`,
    );
  }
  let managerContainer: DaemonOptions["managerContainer"] = null;
  if (f.managerContainer !== undefined) {
    const pod = env[POD_NAME_ENV]?.trim();
    if (!pod || !namespace) {
      throw badInput(
        `--manager-container ${f.managerContainer} needs the agent's own pod: ${POD_NAME_ENV} and ${POD_NAMESPACE_ENV} (or --namespace), which the DaemonSet sets from the downward API; ${!pod ? POD_NAME_ENV : POD_NAMESPACE_ENV} is unset.`,
      );
    }
    managerContainer = { namespace, pod, container: f.managerContainer };
  }
  return {
    node: nodeNameOf(env),
    installer,
    listen: f.listen,
    intervalMs: f.interval,
    daemonSet: f.daemonset === undefined ? null : { namespace: namespace!, name: f.daemonset },
    runtimeClasses: f.runtimeClasses ?? null,
    managerCommand: f.managerCommand ?? null,
    managerSocket: f.managerSocket ?? null,
    managerContainer,
    forceUninstall: f.forceUninstall,
    maxRestarts: f.maxRestarts,
    restartWindowMs: f.restartWindow,
    uninstallPodWaitMs: f.uninstallPodWait,
  };
}

/**
 * The API server: `--kube-api-server` (with `--kube-token-file`) for tests and runs outside a
 * cluster, else the pod's service account (in-cluster).
 */
export function kubeServerOf(
  f: Pick<RunOptions, "kubeApiServer" | "kubeTokenFile">,
): { url: string; token?: string } | undefined {
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
      `--kube-token-file ${f.kubeTokenFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}.`,
    );
  }
  return { url: f.kubeApiServer, token };
}
