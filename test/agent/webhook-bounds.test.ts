/**
 * The webhook's memory and connections are bounded by design (issue 11): a review crafted to
 * explode when parsed is refused while it streams in, idle and trickling connections are
 * destroyed, connections are capped, large bodies take turns, and TLS 1.2 offers AEAD suites
 * only. Real TLS on 127.0.0.1 with certificates made by openssl; small limits so the test is quick.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import { enforcementRules } from "vnode-contract";
import fc from "fast-check";
import { JsonShapeScanner, Slots } from "../../agent/src/webhook/intake";
import { idleConnections } from "../../scripts/idleConnections";
import { startWebhookServer, type WebhookServer } from "../../agent/src/webhook/server";
import { admissionReview, CASES, RULES } from "../support/admissionCases";
import { postReview } from "../support/postReview";
import { type Ca, makeCa, opensslUnavailable, secretDir } from "../support/tlsCerts";

describe("JsonShapeScanner", () => {
  const limits = { maxDepth: 3, maxValues: 10 };
  const scan = (...chunks: string[]) => {
    const s = new JsonShapeScanner(limits);
    for (const c of chunks) {
      const why = s.feed(Buffer.from(c));
      if (why !== undefined) return why;
    }
    return undefined;
  };

  test("counts values across chunk boundaries and ignores structure inside strings", () => {
    // The top value, then one per `{`, `[`, `,` and `:`: 8 here.
    expect(scan('{"a":[1,2,3],"b":"x"}')).toBeUndefined();
    expect(scan('{"a":[1,2,3],', '"b":"x","c":1,"d":2}')).toBe(
      "JSON holds more than 10 values; an AdmissionReview of a Pod never does",
    );
    // Braces, brackets, commas and escaped quotes inside strings are not structure.
    expect(scan('{"k":"{[,:]}\\"{[,:', ']}\\\\"}')).toBeUndefined();
  });

  test("refuses nesting deeper than the limit, even split mid-string", () => {
    expect(scan("[[[1]]]")).toBeUndefined();
    expect(scan('[[["\\', '"[[["],[[')).toBe(
      "JSON nests deeper than 3 levels; an AdmissionReview of a Pod never does",
    );
  });

  test("long strings, found with indexOf, give exactly the byte-by-byte verdict, however the text is split", () => {
    // The scanner before the indexOf fast path, as the oracle.
    const byteByByte = (text: Buffer, max: { maxDepth: number; maxValues: number }) => {
      let [inString, escaped, depth, values] = [false, false, 0, 1];
      for (const b of text) {
        if (inString) {
          if (escaped) escaped = false;
          else if (b === 0x5c) escaped = true;
          else if (b === 0x22) inString = false;
        } else if (b === 0x22) inString = true;
        else if (b === 0x7b || b === 0x5b) {
          if (++depth > max.maxDepth) return "depth";
          values++;
        } else if (b === 0x7d || b === 0x5d) depth--;
        else if ((b === 0x2c || b === 0x3a) && ++values > max.maxValues) return "values";
      }
      return undefined;
    };
    // Strings long enough for the fast path, with escapes, quotes and structure inside them.
    const longString = fc
      .array(fc.constantFrom("x", "é", "\\", '\\"', "{", "[", ",", ":", "]", "}", " "), {
        minLength: 60,
        maxLength: 400,
      })
      .map((parts) => parts.join(""));
    const value = fc.letrec<{ v: string }>((tie) => ({
      v: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        longString.map((x) => JSON.stringify(x)),
        fc.constantFrom("1", "true", "null", '"k"'),
        fc.array(tie("v"), { maxLength: 5 }).map((xs) => `[${xs.join(",")}]`),
        fc
          .array(fc.tuple(longString, tie("v")), { maxLength: 4 })
          .map((kv) => `{${kv.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`),
      ),
    })).v;
    fc.assert(
      fc.property(
        value,
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 60 }),
        (text, cuts, maxDepth, maxValues) => {
          const bytes = Buffer.from(text);
          const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const chunks = [0, ...at].map((from, i) =>
            bytes.subarray(from, [...at, bytes.length][i]),
          );
          const scanner = new JsonShapeScanner({ maxDepth, maxValues });
          let why: string | undefined;
          for (const c of chunks) if ((why ??= scanner.feed(c)) !== undefined) break;
          const got = why === undefined ? undefined : why.includes("nests") ? "depth" : "values";
          expect(got).toBe(byteByByte(bytes, { maxDepth, maxValues }));
        },
      ),
      { numRuns: 500, seed: 11 },
    );
  });

  test("Slots: at most `size` holders, waiters served in order, double release is harmless", async () => {
    const slots = new Slots(1);
    const order: number[] = [];
    const first = await slots.acquire();
    const second = slots.acquire().then((r) => (order.push(2), r));
    const third = slots.acquire().then((r) => (order.push(3), r));
    expect(slots.queued).toBe(2);
    first();
    first();
    (await second)();
    (await third)();
    expect(order).toEqual([2, 3]);
    expect(slots.queued).toBe(0);
    expect(() => new Slots(0)).toThrow("slots must be a positive integer; got 0.");
  });
});

/**
 * ms until the server closed its side, provided it really destroyed the socket: a half-open
 * client cannot tell `end()` from `destroy()` by the FIN alone, so after the FIN it keeps
 * writing; a destroyed socket answers with a reset (the client closes), a merely ended one
 * keeps reading. Infinity when the socket is still open at the cap.
 */
const closedAfter = (s: tls.TLSSocket, capMs: number) =>
  new Promise<number>((resolve) => {
    const start = Date.now();
    let ended = Infinity;
    let probe: NodeJS.Timeout | undefined;
    const t = setTimeout(() => {
      clearInterval(probe);
      s.destroy();
      resolve(Infinity);
    }, capMs);
    s.resume();
    s.on("error", () => {});
    s.once("end", () => {
      ended = Date.now() - start;
      probe = setInterval(() => s.writable && s.write("probe\r\n"), 100);
    });
    s.once("close", () => {
      clearTimeout(t);
      clearInterval(probe);
      resolve(Math.min(ended, Date.now() - start));
    });
  });

const why = opensslUnavailable();
if (why && process.env.CI === "true") throw new Error(`webhook-bounds test needs openssl: ${why}`);

(why ? describe.skip : describe)("webhook bounds over real TLS", () => {
  let work: string;
  let ca: Ca;
  let server: WebhookServer;
  const IDLE_MS = 1000;
  const HEADERS_MS = 1000;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-bounds-"));
    ca = makeCa(path.join(work, "ca"));
    const secret = secretDir(path.join(work, "tls"), ca.issue("webhook"));
    server = await startWebhookServer({
      listen: "127.0.0.1:0",
      tlsCertFile: secret.certFile,
      tlsKeyFile: secret.keyFile,
      rules: enforcementRules(RULES),
      maxConnections: 8,
      idleTimeoutMs: IDLE_MS,
      headersTimeoutMs: HEADERS_MS,
      smallBodyBytes: 4 * 1024,
      largeBodySlots: 1,
    });
  });
  afterAll(async () => {
    await server?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const port = () => server.address.port;
  const connect = (opts: tls.ConnectionOptions = {}) =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      // allowHalfOpen: the client never closes its side, so only the server's destroy() ends the
      // socket (a server that merely end()s it, as before issue 11, leaves it open forever).
      const s = tls.connect(
        // (Node honours the option; @types/node does not list it.)
        {
          host: "127.0.0.1",
          port: port(),
          ca: ca.certPem,
          ...({ allowHalfOpen: true } as tls.ConnectionOptions),
          ...opts,
        },
        () => resolve(s),
      );
      s.once("error", reject);
    });

  const post = (p: string, body: Buffer) => postReview(port(), ca.certPem, p, body);

  const legit = () => Buffer.from(JSON.stringify(admissionReview(CASES[0])));

  test("a valid review carrying 200,000 empty objects is refused with 400 before it is parsed", async () => {
    const crafted = admissionReview(CASES[0]) as Record<string, unknown>;
    crafted.padding = "@@PAD@@";
    const body = Buffer.from(
      JSON.stringify(crafted).replace('"@@PAD@@"', `[${"{},".repeat(199_999)}{}]`),
    );
    expect(body.length).toBeGreaterThan(500_000);
    const r = await post("/validate", body);
    expect(r).toEqual({
      status: 400,
      body: "JSON holds more than 100000 values; an AdmissionReview of a Pod never does\n",
    });
    // The same review without the padding is judged as usual.
    expect((await post("/validate", legit())).status).toBe(200);
  });

  test("a connection that finishes the handshake and sends nothing is destroyed after the idle timeout", async () => {
    const s = await connect();
    const ms = await closedAfter(s, IDLE_MS * 4);
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 100);
    expect(ms).toBeLessThan(IDLE_MS * 3);
  });

  test("a client trickling its headers is answered 408 and its socket destroyed", async () => {
    const s = await connect();
    let answer = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => (answer += d));
    s.write("POST /validate HTTP/1.1\r\nhost: x\r\n");
    // One header byte every 200 ms keeps the socket busy, so only the headers timeout can end it.
    const drip = setInterval(() => s.writable && s.write("x"), 200);
    const ms = await closedAfter(s, HEADERS_MS * 6);
    clearInterval(drip);
    expect(ms).toBeLessThan(HEADERS_MS * 5);
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
  });

  test("connections beyond maxConnections are dropped at once; freed slots admit new ones", async () => {
    const held = await Promise.all(Array.from({ length: 8 }, () => connect()));
    const extra = tls.connect({ host: "127.0.0.1", port: port(), ca: ca.certPem });
    extra.on("error", () => {});
    expect(await closedAfter(extra, 3000)).toBeLessThan(1000);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await post("/validate", legit())).status).toBe(200);
  });

  test("large bodies take turns through one slot; a client that leaves mid-body frees it", async () => {
    // Leaves mid-body: declares 100 KiB, sends 10 KiB (past the 4 KiB small-body size), goes away.
    const s = await connect();
    s.write(
      "POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 102400\r\n\r\n",
    );
    s.write(Buffer.alloc(10 * 1024, 0x20));
    await new Promise((r) => setTimeout(r, 200));
    s.destroy();
    // Three large legit reviews at once (a 20 KiB annotation each): all answered.
    const big = () => {
      const r = admissionReview(CASES[0]) as {
        request: { object: { metadata: { annotations: Record<string, string> } } };
      };
      r.request.object.metadata.annotations.big = "x".repeat(20 * 1024);
      return Buffer.from(JSON.stringify(r));
    };
    const answers = await Promise.all([1, 2, 3].map(() => post("/validate", big())));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
  });

  test("a large review is parsed and judged in the review thread, never on the event loop, with the same answer", async () => {
    // 100 KiB of annotation: over this server's 4 KiB small-body size.
    const review = admissionReview(CASES.find((c) => c.denied !== null) ?? CASES[0]) as {
      request: { object: { metadata: { annotations?: Record<string, string> } } };
    };
    const small = Buffer.from(JSON.stringify(review));
    review.request.object.metadata.annotations = { big: "x".repeat(100 * 1024) };
    const large = Buffer.from(JSON.stringify(review));
    const parse = jest.spyOn(JSON, "parse");
    try {
      const fromThread = await post("/validate", large);
      const longest = () => Math.max(0, ...parse.mock.calls.map(([text]) => String(text).length));
      // This process's JSON.parse never saw the large body (the thread has its own JSON).
      expect(longest()).toBeLessThan(4 * 1024);
      const fromLoop = await post("/validate", small);
      expect(longest()).toBeGreaterThan(1000);
      expect(fromThread.status).toBe(200);
      expect(JSON.parse(fromThread.body)).toEqual(JSON.parse(fromLoop.body));
    } finally {
      parse.mockRestore();
    }
  });

  test("TLS 1.2 offers AEAD suites only: a CBC-only client cannot connect, a GCM one can", async () => {
    const v12 = { minVersion: "TLSv1.2", maxVersion: "TLSv1.2" } as const;
    await expect(
      connect({ ...v12, ciphers: "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA" }),
    ).rejects.toThrow(/handshake failure|no shared cipher|alert/i);
    const ok = await connect({ ...v12, ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256" });
    expect(ok.getCipher().name).toBe("ECDHE-ECDSA-AES128-GCM-SHA256");
    ok.destroy();
  });
});

/**
 * Idle connections, each test with its own server: a silent connection is destroyed by the
 * per-socket idle timer (`server.setTimeout`: a timer on each socket) or, first when shorter, by
 * the headers timeout (checked every `connectionsCheckingInterval`, 1 s here; Node's default of
 * 30 s would stretch a 10 s timeout to 40 s); a keep-alive connection by `keepAliveTimeout`.
 */
(why ? describe.skip : describe)("webhook idle connections over real TLS", () => {
  let work: string;
  let ca: Ca;
  const servers: WebhookServer[] = [];
  const IDLE_MS = 1000;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-idle-"));
    ca = makeCa(path.join(work, "ca"));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const start = async (
    dir: string,
    timeouts: { idleTimeoutMs: number; headersTimeoutMs: number } = {
      idleTimeoutMs: IDLE_MS,
      headersTimeoutMs: IDLE_MS,
    },
  ) => {
    const secret = secretDir(path.join(work, dir), ca.issue("webhook"));
    const server = await startWebhookServer({
      listen: "127.0.0.1:0",
      tlsCertFile: secret.certFile,
      tlsKeyFile: secret.keyFile,
      rules: enforcementRules(RULES),
      ...timeouts,
    });
    servers.push(server);
    return server;
  };
  const connect = (port: number) =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect(
        {
          host: "127.0.0.1",
          port,
          ca: ca.certPem,
          ...({ allowHalfOpen: true } as tls.ConnectionOptions),
        },
        () => resolve(s),
      );
      s.once("error", reject);
    });

  test("the idle timer alone: with a long headers timeout, a silent connection is destroyed after idleTimeoutMs", async () => {
    // A server whose headers timeout (20 s) cannot be what closes the socket: only the
    // per-socket idle timer (server.setTimeout, a timer on each socket, no periodic sweep) can.
    // (afterAll closes every server started here.)
    const only = await start("tls-idle", { idleTimeoutMs: 800, headersTimeoutMs: 20_000 });
    const s = await connect(only.address.port);
    const ms = await closedAfter(s, 5000);
    expect(ms).toBeGreaterThanOrEqual(700);
    expect(ms).toBeLessThan(1600);
  });

  test("a keep-alive connection left idle after its answer is destroyed after the idle timeout", async () => {
    const s = await connect((await start("tls-keepalive")).address.port);
    let answer = "";
    s.setEncoding("utf8");
    const answered = new Promise<void>((resolve) =>
      s.on("data", (d: string) => {
        answer += d;
        if (answer.includes("ok\n")) resolve();
      }),
    );
    s.write("GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\n\r\n");
    await answered;
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    const ms = await closedAfter(s, IDLE_MS * 4);
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 100);
    expect(ms).toBeLessThan(IDLE_MS * 3);
  });

  test("the hostile bench's idle probe reports the server's close, not its own give-up", async () => {
    // The server in a process of its own, and as in production the headers timeout (1 s here)
    // shorter than the idle timeout (3 s): a silent connection gets a 408 and the server's FIN.
    // A client that does not read keeps the 408 unread, so its stream never emits 'end' and the
    // close stays invisible: the bench's first probe reported its own cap for exactly this.
    const secret = secretDir(path.join(work, "tls-probe"), ca.issue("webhook"));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.resolve(__dirname, "../support/webhookProcess.ts")].concat(
        JSON.stringify({
          tlsCertFile: secret.certFile,
          tlsKeyFile: secret.keyFile,
          idleTimeoutMs: 3 * IDLE_MS,
          headersTimeoutMs: IDLE_MS,
        }),
      ),
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = "";
        child.stdout?.on("data", (d: Buffer) => {
          out += d.toString();
          const m = out.match(/\{"port":(\d+)\}/);
          if (m) resolve(Number(m[1]));
        });
        child.on("exit", (code) => reject(new Error(`webhook process exited ${code}`)));
      });
      // Headers timeout 1 s, checked every 1 s: closed 1-2 s after the handshake, before the idle timer.
      const r = await idleConnections(port, ca.certPem, 3, 8);
      expect([r.refused, r.stillOpen, r.closedAfter.length]).toEqual([0, 0, 3]);
      for (const t of r.closedAfter) {
        expect(t).toBeGreaterThanOrEqual(0.9);
        expect(t).toBeLessThan(2.9);
      }
    } finally {
      child.kill("SIGKILL");
    }
  });
});
