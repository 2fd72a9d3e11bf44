/**
 * The HTTPS server of `vnode-agent webhook`: AdmissionReview v1 on `POST /mutate`,
 * `/mutate/<mode>`, `/validate/<mode>`, `/validate/unknown-isolation` and `/validate`, health on `GET /healthz` and `/readyz`, all on one TLS port.
 * Bad requests get a 4xx with a one-line reason, never a crash. Small bodies (nearly every review)
 * are judged on the event loop; large ones in the review thread (reviewWorker.ts), so a stream of
 * large bodies cannot hold up the small ones. The certificate and key are
 * re-read every few seconds and swapped in when they change (a Secret rotation swaps kubelet's
 * `..data` symlink, so both files change at once), without a restart.
 */
import { createHash, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type EnforcementRules,
  ISOLATION_MODES,
  type NamespaceGuard,
  WEBHOOK_HTTPS,
} from "vnode-contract";
import { AgentError, ExitCode, messageOf } from "../lib/errors";
import {
  dropBadClient,
  type ListenAddress,
  listenOn,
  parseListen,
  requestPath,
} from "../daemon/health";
import { JSON_SHAPE_LIMITS, JsonShapeScanner, type JsonShapeLimits, Slots } from "./intake";
import { compilePolicy } from "./policy";
import { answerReview, type ReviewAnswer, type ReviewRoute, routesOf } from "./review";
import { REVIEW_THREAD_DEFAULTS, ReviewWorker } from "./reviewWorker";

/** The logging the server does; a pino logger fits. */
export interface WebhookLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}
const silent: WebhookLog = { info() {}, warn() {}, debug() {} };

export interface WebhookServerOptions {
  /** `--listen` as given, or already parsed. */
  listen: string | ListenAddress;
  tlsCertFile: string;
  tlsKeyFile: string;
  rules: EnforcementRules;
  /** Serves the namespace routes (label guard, Pod Security labelling) when set. */
  namespaceGuard?: NamespaceGuard;
  /**
   * Largest request body accepted. A pod may be up to etcd's 1.5 MiB, and the review wraps it,
   * so the default is 3 MiB; larger bodies get a 413.
   */
  maxBodyBytes?: number;
  /** How often the certificate files are checked for a change. Default 5 s. */
  reloadIntervalMs?: number;
  /** Open connections at most; more are refused at accept. Default {@link WEBHOOK_DEFAULTS}. */
  maxConnections?: number;
  /**
   * A connection with no traffic for this long is destroyed, whether it never sent a request or
   * is an idle keep-alive one. Default 20 s.
   */
  idleTimeoutMs?: number;
  /** The request head must arrive within this (a trickling client is destroyed). Default 10 s. */
  headersTimeoutMs?: number;
  /** Limits of the streaming shape check that runs before a body is parsed. */
  jsonLimits?: JsonShapeLimits;
  /**
   * Bodies up to this size are read freely and judged on the event loop; larger ones need one of
   * `largeBodySlots` and are judged in the review thread.
   */
  smallBodyBytes?: number;
  /** How many large bodies are buffered and judged at once; others wait, their sockets paused. */
  largeBodySlots?: number;
  /** The review thread's nice value; default {@link REVIEW_THREAD_DEFAULTS}. */
  reviewThreadNice?: number;
  log?: WebhookLog;
}

/**
 * Why these numbers: the API server keeps a small pool of keep-alive connections per webhook
 * Service (tens, not hundreds), and sends reviews of a few KiB; a pod is at most etcd's 1.5 MiB,
 * wrapped in a review. Worst case memory: 256 connections x 64 KiB of small bodies (16 MiB, only
 * when every connection sends at once) plus 1 large body of 3 MiB with its parsed form (bounded
 * by the shape limits), under the Deployment's 256 MiB limit with the process's ~66 MiB idle RSS
 * (the measured peaks are next to the limit, components/enforcement/plan.ts).
 */
export const WEBHOOK_DEFAULTS = {
  maxBodyBytes: 3 * 1024 * 1024,
  reloadIntervalMs: 5000,
  maxConnections: 256,
  idleTimeoutMs: 20_000,
  headersTimeoutMs: 10_000,
  /** The whole request, body included; a client that trickles its body is destroyed after it. */
  requestTimeoutMs: 15_000,
  handshakeTimeoutMs: 10_000,
  smallBodyBytes: 64 * 1024,
  largeBodySlots: 1,
} as const;

/**
 * TLS 1.2 suites offered: ECDHE key exchange with AEAD ciphers only (no CBC, no SHA-1 MAC, no
 * static RSA), the set Go's crypto/tls (the API server's client) prefers. TLS 1.3 suites are all
 * AEAD and stay at OpenSSL's defaults.
 */
export const TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

export interface WebhookServer {
  address: { host: string; port: number };
  /** Base URL, for tests and logs. */
  url: string;
  /** SHA-256 fingerprint of the certificate served to new connections. */
  fingerprint(): string;
  /** Checks the files now; resolves true when a new certificate was swapped in. */
  reload(): Promise<boolean>;
  /** Makes /readyz answer 503 (shutdown in progress) so the Service drains this replica. */
  setNotReady(reason: string): void;
  /**
   * Stops accepting connections and the reload timer; requests in flight may finish for
   * `graceMs` (default 0), then every connection is dropped. Resolves when closed.
   */
  close(graceMs?: number): Promise<void>;
}

interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  hash: string;
  fingerprint: string;
  notAfter: string;
}

/** Reads and checks the pair; throws an Error naming the flag and file at fault. */
async function loadTls(certFile: string, keyFile: string): Promise<TlsMaterial> {
  const read = async (flag: string, file: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new Error(`${flag} ${file}: cannot read (${code}).`);
    }
  };
  const [cert, key] = await Promise.all([
    read("--tls-cert-file", certFile),
    read("--tls-key-file", keyFile),
  ]);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`--tls-cert-file ${certFile}: not a PEM certificate (${messageOf(err)}).`);
  }
  try {
    // Also proves that the key matches the certificate.
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(
      `--tls-cert-file ${certFile} and --tls-key-file ${keyFile} are not a usable certificate and key pair (${messageOf(err)}).`,
    );
  }
  return {
    cert,
    key,
    hash: createHash("sha256").update(cert).update("\0").update(key).digest("hex"),
    fingerprint: x509.fingerprint256,
    notAfter: new Date(x509.validTo).toISOString(),
  };
}

/** Starts the server; rejects with an AgentError naming the flag when TLS or --listen is bad. */
export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const listen = typeof opts.listen === "string" ? parseListen(opts.listen) : opts.listen;
  const log = opts.log ?? silent;
  const maxBody = opts.maxBodyBytes ?? WEBHOOK_DEFAULTS.maxBodyBytes;
  const policy = compilePolicy(opts.rules);
  const routes = routesOf(opts.rules, opts.namespaceGuard);
  const known = [...routes.keys()].join(", ");
  let notReady: string | undefined;

  let material: TlsMaterial;
  try {
    material = await loadTls(opts.tlsCertFile, opts.tlsKeyFile);
  } catch (err) {
    throw new AgentError(messageOf(err), ExitCode.BadInput);
  }

  const idleTimeoutMs = opts.idleTimeoutMs ?? WEBHOOK_DEFAULTS.idleTimeoutMs;
  const headersTimeoutMs = opts.headersTimeoutMs ?? WEBHOOK_DEFAULTS.headersTimeoutMs;
  const jsonLimits = opts.jsonLimits ?? JSON_SHAPE_LIMITS;
  const smallBody = opts.smallBodyBytes ?? WEBHOOK_DEFAULTS.smallBodyBytes;
  const largeSlots = new Slots(opts.largeBodySlots ?? WEBHOOK_DEFAULTS.largeBodySlots);
  const tlsOptions = { minVersion: "TLSv1.2", ciphers: TLS12_CIPHERS } as const;

  const server = https.createServer({
    cert: material.cert,
    key: material.key,
    ...tlsOptions,
    handshakeTimeout: Math.min(WEBHOOK_DEFAULTS.handshakeTimeoutMs, idleTimeoutMs),
    // The API server's Go client notices a server-closed idle connection in its read loop and
    // dials anew, so idle keep-alive connections can be closed well before its own 90 s.
    keepAliveTimeout: idleTimeoutMs,
    headersTimeout: headersTimeoutMs,
    requestTimeout: Math.max(headersTimeoutMs, WEBHOOK_DEFAULTS.requestTimeoutMs),
    // Node checks the two timeouts above on this interval (default 30 s, which would stretch them).
    connectionsCheckingInterval: 1_000,
  });
  server.maxConnections = opts.maxConnections ?? WEBHOOK_DEFAULTS.maxConnections;
  // A socket without traffic for this long is destroyed (no 'timeout' listener: Node's default),
  // covering connections that finish the handshake and never send a request.
  server.setTimeout(idleTimeoutMs);

  const text = (
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ) => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    });
    res.end(`${body}\n`);
  };

  const send = (res: ServerResponse, answer: ReviewAnswer) => {
    if (answer.log !== undefined) log[answer.log.level](answer.log.fields, answer.log.msg);
    if (answer.status !== 200) return text(res, answer.status, answer.body);
    if (res.headersSent || res.destroyed) return;
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(answer.body)),
    });
    res.end(answer.body);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const pathname = requestPath(req.url);
    const route = routes.get(pathname);
    if (route === undefined) {
      const mode = pathname.startsWith(`${WEBHOOK_HTTPS.mutate}/`)
        ? pathname.slice(WEBHOOK_HTTPS.mutate.length + 1)
        : undefined;
      const why =
        mode !== undefined && (ISOLATION_MODES as readonly string[]).includes(mode)
          ? `no RuntimeClass is configured for mode ${mode} (--class ${mode}=NAME)`
          : `not found`;
      return text(res, 404, `${why}: ${pathname}; served paths: ${known}`);
    }
    if (route.kind === "health") {
      if (req.method !== "GET" && req.method !== "HEAD") {
        return text(res, 405, `method ${req.method} not allowed on ${pathname}`, {
          allow: "GET, HEAD",
        });
      }
      if (pathname === WEBHOOK_HTTPS.readyz && notReady !== undefined) {
        return text(res, 503, notReady);
      }
      return text(res, 200, "ok");
    }
    if (req.method !== "POST") {
      return text(res, 405, `method ${req.method} not allowed on ${pathname}; use POST`, {
        allow: "POST",
      });
    }
    const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/json") {
      return text(
        res,
        400,
        `content-type must be application/json; got ${JSON.stringify(req.headers["content-type"] ?? "")}`,
      );
    }
    readBody(req, res, pathname, route);
  };

  /** Refuses a body mid-stream: answers, then drops the connection and whatever is still unread. */
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, message: string) => {
    text(res, status, message, { connection: "close" });
    const socket = req.socket;
    // Give the answer a moment to leave; a client that keeps sending must not keep the socket.
    setTimeout(() => socket.destroy(), 1000).unref();
  };

  const readBody = (
    req: IncomingMessage,
    res: ServerResponse,
    pathname: string,
    route: ReviewRoute,
  ) => {
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (declared > maxBody) {
      return refuse(req, res, 413, `request body exceeds the limit of ${maxBody} bytes`);
    }
    const scanner = new JsonShapeScanner(jsonLimits);
    const chunks: Buffer[] = [];
    let size = 0;
    let finished = false;
    // A large body's slot: held until its answer is sent, or the request ends without one.
    let slot: Promise<() => void> | undefined;
    const stop = () => {
      finished = true;
      chunks.length = 0;
    };
    const abandon = () => {
      if (finished) return;
      stop();
      if (slot !== undefined) largeSlots.release(slot);
    };
    req.on("data", (chunk: Buffer) => {
      if (finished) return;
      size += chunk.length;
      if (size > maxBody) {
        abandon();
        return refuse(req, res, 413, `request body exceeds the limit of ${maxBody} bytes`);
      }
      const why = scanner.feed(chunk);
      if (why !== undefined) {
        abandon();
        return refuse(req, res, 400, why);
      }
      chunks.push(chunk);
      if (size > smallBody && slot === undefined) {
        // A large body: wait for a slot with the socket paused, so the bytes stay in the client
        // and the kernel instead of this heap.
        req.pause();
        slot = largeSlots.acquire();
        void slot.then(() => {
          if (!finished) req.resume();
        });
      }
    });
    req.on("end", () => {
      if (finished) return;
      const large = slot;
      if (large === undefined) {
        const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
        stop();
        return send(res, answerReview(route, body, policy, pathname));
      }
      // A buffer of its own, so it moves to the thread without a copy.
      const body = Buffer.concat(chunks, size);
      stop();
      void reviews.answer(pathname, body).then((answer) => {
        largeSlots.release(large);
        send(res, answer);
      });
    });
    // The client went away (or a timeout destroyed the socket): nothing to answer.
    req.on("close", abandon);
    req.on("error", abandon);
  };

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    // No throw may reach the event loop: an uncaught exception ends the process.
    try {
      onRequest(req, res);
    } catch (err) {
      log.warn({ reason: (err as Error).stack }, "request failed");
      if (!res.headersSent) text(res, 500, "internal error", { connection: "close" });
      else res.destroy();
    }
  });
  // A TLS or parser error on one connection (a port scanner, a plain-HTTP client) must not crash
  // the process; the connection is dropped.
  server.on("tlsClientError", (err, socket) => {
    log.debug({ reason: err.message }, "TLS handshake failed");
    socket.destroy();
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    log.debug({ reason: err.message }, "bad HTTP request");
    dropBadClient(err, socket);
  });

  const reviews = new ReviewWorker(
    {
      rules: opts.rules,
      guard: opts.namespaceGuard,
      nice: opts.reviewThreadNice ?? REVIEW_THREAD_DEFAULTS.nice,
    },
    log,
  );
  try {
    await listenOn(server, listen);
  } catch (err) {
    await reviews.close();
    throw err;
  }

  let reloading: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const reloadNow = async (): Promise<void> => {
    try {
      const next = await loadTls(opts.tlsCertFile, opts.tlsKeyFile);
      if (next.hash === material.hash) return;
      server.setSecureContext({ cert: next.cert, key: next.key, ...tlsOptions });
      log.info(
        {
          fingerprint: next.fingerprint,
          previous: material.fingerprint,
          notAfter: next.notAfter,
        },
        "certificate reloaded",
      );
      material = next;
    } catch (err) {
      // Mid-rotation (new cert, old key) or a broken Secret: keep serving the old pair, retry.
      log.warn({ reason: messageOf(err) }, "certificate not reloaded; serving the previous one");
    }
  };
  // One reload at a time. A caller that arrives while one runs gets the next one (shared with
  // later callers), since the running one may have read the files before the caller's change;
  // the caller learns whether the served pair changed since it asked, whichever run changed it.
  const serialized = (): Promise<void> => {
    if (reloading === undefined) {
      reloading = reloadNow().finally(() => (reloading = undefined));
      return reloading;
    }
    queued ??= reloading.then(() => {
      queued = undefined;
      return serialized();
    });
    return queued;
  };
  const reload = async (): Promise<boolean> => {
    const before = material.hash;
    await serialized();
    return material.hash !== before;
  };
  const timer = setInterval(
    () => void reload(),
    opts.reloadIntervalMs ?? WEBHOOK_DEFAULTS.reloadIntervalMs,
  );
  timer.unref();

  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  log.info(
    {
      host: addr.address,
      port: addr.port,
      fingerprint: material.fingerprint,
      notAfter: material.notAfter,
    },
    "webhook listening",
  );
  return {
    address: { host: addr.address, port: addr.port },
    url: `https://${urlHost}:${addr.port}`,
    fingerprint: () => material.fingerprint,
    reload,
    setNotReady(reason: string) {
      notReady = reason;
    },
    close: (graceMs = 0) =>
      new Promise<void>((resolve, reject) => {
        clearInterval(timer);
        server.close((err) => {
          void reviews.close().then(() => (err ? reject(err) : resolve()));
        });
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.once("close", () => clearTimeout(force));
      }),
  };
}
