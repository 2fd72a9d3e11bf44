/**
 * Whether vNode's manager answers on its unix socket (`--manager-socket`), for `/readyz`.
 *
 * vNode does not document the manager's protocol, so the check is what can be known without it:
 * a unix-socket connect that the kernel completes, i.e. a process listens on that path. Nothing
 * is sent; the socket is closed as soon as the connect completes or fails, and a connect that
 * neither completes nor fails within `timeoutMs` is abandoned (destroyed), so a probe never
 * leaves a socket open and never takes longer than its timeout.
 */
import * as net from "node:net";

export type SocketVerdict = { ok: true } | { ok: false; code: string; reason: string };

/** How long one connect may take: a local unix connect completes or fails in microseconds. */
export const MANAGER_PROBE_TIMEOUT_MS = 2000;

/** Between two probes: /readyz follows the manager within this (kubelet probes every 10 s). */
export const MANAGER_PROBE_INTERVAL_MS = 5000;

/** What an errno means for a manager socket, in the words an operator needs. */
const WHY: Record<string, string> = {
  ENOENT: "no socket there: the manager has not started or has not created it",
  ECONNREFUSED: "nothing listens on it: the manager is not running or closed it",
  EACCES: "permission denied",
  ENOTSOCK: "the path is not a socket",
  EAGAIN: "the manager's accept queue is full",
};

/**
 * Connects to the unix socket at `path` (a path in the agent's filesystem, i.e. already under
 * --host-root) and closes it. `label` names it in the reason (the host path the operator knows).
 */
export function probeUnixSocket(
  path: string,
  timeoutMs: number = MANAGER_PROBE_TIMEOUT_MS,
  label: string = path,
): Promise<SocketVerdict> {
  return new Promise((resolve) => {
    let settled = false;
    const socket = net.createConnection({ path });
    const finish = (verdict: SocketVerdict) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(verdict);
    };
    const timer = setTimeout(
      () =>
        finish({
          ok: false,
          code: "ETIMEDOUT",
          reason: `vNode manager socket ${label}: no answer within ${timeoutMs} ms (timeout)`,
        }),
      timeoutMs,
    );
    socket.once("connect", () => finish({ ok: true }));
    socket.once("error", (err: NodeJS.ErrnoException) => {
      const code = err.code ?? "error";
      const why = WHY[code] ?? err.message;
      finish({ ok: false, code, reason: `vNode manager socket ${label}: ${code} (${why})` });
    });
  });
}
