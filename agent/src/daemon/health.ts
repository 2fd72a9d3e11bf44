/**
 * The agent's HTTP endpoint on `--listen`: `/healthz` (the daemon loop is alive), `/readyz` (the
 * runtime handler is verified and the node labels are set, which is when vNode pods may land)
 * and `/metrics` (Prometheus text). Plain node:http, no framework: three GET routes.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import type * as stream from "node:stream";
import type { Registry } from "prom-client";
import { AGENT_HTTP, type ListenAddress } from "vnode-contract";
import { AgentError, ExitCode, badInput, messageOf } from "../lib/errors";

/** `--listen`'s parsed value; the contract writes it back (formatListen). */
export type { ListenAddress };

const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/**
 * Parses `--listen`: `:PORT` (every interface), `HOST:PORT` or `[IPV6]:PORT`, with PORT
 * 0..65535 (0 picks a free port). Throws a BadInput AgentError naming --listen otherwise.
 */
export function parseListen(value: string): ListenAddress {
  const fail = (why: string) =>
    badInput(
      `--listen must be ":PORT", "HOST:PORT" or "[IPV6]:PORT" with PORT 0-65535; ` +
        `got ${JSON.stringify(value)} (${why}).`,
    );
  const m = value.match(/^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/);
  if (!m) throw fail("expected one colon between host and port, IPv6 hosts in brackets");
  const [, v6, plain, portText] = m;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw fail(`port ${JSON.stringify(portText)} is not a number from 0 to 65535`);
  }
  let host: string | undefined;
  if (v6 !== undefined) {
    if (!net.isIPv6(v6)) throw fail(`${JSON.stringify(v6)} is not an IPv6 address`);
    host = v6;
  } else if (plain !== "") {
    if (!net.isIPv4(plain) && !HOSTNAME.test(plain)) {
      throw fail(`${JSON.stringify(plain)} is not an IPv4 address or a host name`);
    }
    host = plain;
  }
  return { host, port: Number(portText) };
}

export interface Verdict {
  ok: boolean;
  /** One line: "ok" or why not. */
  reason: string;
}

export interface Readiness {
  /** containerd's CRI reported the runtime handler after the last install or repair. */
  handlerVerified: boolean;
  /** The node carries the `ready` runtime label and the isolation mode label. */
  labelsSet: boolean;
  /** Why not ready, when the daemon knows better (e.g. "installing", "uninstalling"). */
  reason?: string;
  /** Why vNode's manager does not answer on its socket; undefined when it does or is not checked. */
  managerDown?: string;
}

/**
 * What the endpoints report, updated by the daemon: a heartbeat from its loop (stale means the
 * loop is stuck, and kubelet should restart the container) and the readiness facts.
 */
export class HealthState {
  private lastBeat: number;
  private readinessFacts: Readiness = {
    handlerVerified: false,
    labelsSet: false,
    reason: "starting",
  };

  /**
   * @param staleAfterMs how old the last beat may get before /healthz fails; longer than the
   *   daemon's longest step between beats (an install, a containerd restart).
   */
  constructor(
    private readonly staleAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(staleAfterMs > 0)) throw new Error(`staleAfterMs must be > 0; got ${staleAfterMs}.`);
    // Creation counts as the first beat, so the daemon is alive while it starts up.
    this.lastBeat = now();
  }

  beat(): void {
    this.lastBeat = this.now();
  }

  setReadiness(readiness: Readiness): void {
    this.readinessFacts = { ...readiness };
  }

  liveness(): Verdict {
    const age = this.now() - this.lastBeat;
    if (age <= this.staleAfterMs) return { ok: true, reason: "ok" };
    return {
      ok: false,
      reason: `daemon loop stalled: last heartbeat ${(age / 1000).toFixed(1)} s ago (limit ${(this.staleAfterMs / 1000).toFixed(1)} s)`,
    };
  }

  readiness(): Verdict {
    const { handlerVerified, labelsSet, reason, managerDown } = this.readinessFacts;
    if (handlerVerified && labelsSet) {
      return managerDown === undefined
        ? { ok: true, reason: "ok" }
        : { ok: false, reason: managerDown };
    }
    if (reason) return { ok: false, reason: reason.split("\n")[0] };
    return {
      ok: false,
      reason: !handlerVerified ? "runtime handler not verified" : "node labels not set",
    };
  }
}

export interface HealthServerOptions {
  /** `--listen` as given, or already parsed. */
  listen: string | ListenAddress;
  state: HealthState;
  registry: Registry;
}

export interface HealthServer {
  /** Where it really listens (the port is resolved when 0 was asked). */
  address: { host: string; port: number };
  /** Base URL, for tests and logs. */
  url: string;
  /** Stops listening and drops open connections; resolves when closed. */
  close(): Promise<void>;
}

/**
 * Bounds of the agent's plain-HTTP endpoint. Its clients are kubelet's probes and a Prometheus
 * scraper: a handful of short GETs, so a tight cap and short timeouts cost them nothing and keep a
 * pod that opens sockets and sends nothing from holding the agent's memory.
 */
export const HTTP_LIMITS = {
  maxConnections: 64,
  /** The whole header block must arrive within this; then the socket is destroyed. */
  headersTimeout: 10_000,
  requestTimeout: 10_000,
  keepAliveTimeout: 5_000,
  /** How often Node checks the two timeouts above (its default, 30 s, would triple them). */
  connectionsCheckingInterval: 1_000,
  /** A socket with no traffic at all for this long is destroyed, whatever its state. */
  idleSocketMs: 15_000,
  /** Largest header block (Node's default is 16 KiB). */
  maxHeaderSize: 8 * 1024,
} as const;

/**
 * The path of a request target, without query or fragment, never throwing: `new URL()` throws on
 * targets such as `//`, and a throw in a request handler would end the process.
 */
export function requestPath(url: string | undefined): string {
  const target = url ?? "/";
  const end = target.search(/[?#]/);
  return end === -1 ? target : target.slice(0, end);
}

/**
 * Node's answer to a request it cannot parse or that ran past a timeout: a 400 or 408 when the
 * socket can still take it, then the socket is destroyed (Node's default `clientError` handling
 * answers but can leave a slow client's socket open).
 */
export function dropBadClient(err: NodeJS.ErrnoException, socket: stream.Duplex): void {
  if (socket.writable && !socket.destroyed) {
    const status =
      err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : "400 Bad Request";
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  }
  // Let the answer leave; a client that never reads must not keep the socket either.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** Starts the HTTP server. Rejects with an AgentError naming --listen when it cannot listen. */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const listen = typeof opts.listen === "string" ? parseListen(opts.listen) : opts.listen;
  const { state, registry } = opts;

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const text = (status: number, body: string, headers: http.OutgoingHttpHeaders = {}) => {
      res.writeHead(status, {
        "content-type": "text/plain; charset=utf-8",
        "cache-control": "no-store",
        ...headers,
      });
      res.end(req.method === "HEAD" ? undefined : `${body}\n`);
    };
    const pathname = requestPath(req.url);
    const known = [AGENT_HTTP.healthz, AGENT_HTTP.readyz, AGENT_HTTP.metrics] as string[];
    if (!known.includes(pathname)) return text(404, `not found: ${pathname}`);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return text(405, `method ${req.method} not allowed`, { allow: "GET, HEAD" });
    }
    if (pathname === AGENT_HTTP.healthz || pathname === AGENT_HTTP.readyz) {
      const v = pathname === AGENT_HTTP.healthz ? state.liveness() : state.readiness();
      return text(v.ok ? 200 : 503, v.reason);
    }
    registry.metrics().then(
      (body) => {
        if (res.destroyed) return;
        res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (err: unknown) => {
        if (!res.destroyed) text(500, `metrics: ${messageOf(err)}`);
      },
    );
  };

  const server = http.createServer(HTTP_LIMITS, (req, res) => {
    // Whatever a client sends, a throw here must not reach the event loop: an uncaught exception
    // ends the agent, and any pod can reach this port.
    try {
      handle(req, res);
    } catch {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8", connection: "close" });
        res.end("internal error\n");
      } else {
        res.destroy();
      }
    }
  });
  server.maxConnections = HTTP_LIMITS.maxConnections;
  server.setTimeout(HTTP_LIMITS.idleSocketMs); // no 'timeout' listener: Node destroys the socket
  server.on("clientError", dropBadClient);

  await listenOn(server, listen);

  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    address: { host: addr.address, port: addr.port },
    url: `http://${urlHost}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections (kubelet's probes, Prometheus) would hold close() open.
        server.closeAllConnections();
      }),
  };
}

/** Starts `server` on `listen`; a failure names --listen and the reason. */
export function listenOn(server: net.Server, listen: ListenAddress): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new AgentError(
          `--listen ${formatListen(listen)}: cannot listen (${err.code ?? err.message}).`,
          ExitCode.Failure,
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
}

function formatListen(listen: ListenAddress): string {
  const host =
    listen.host === undefined ? "" : net.isIPv6(listen.host) ? `[${listen.host}]` : listen.host;
  return `"${host}:${listen.port}"`;
}
