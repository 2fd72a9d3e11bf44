/**
 * The idle-connection probe of `bench:webhook -- --hostile`: opens TLS connections that send
 * nothing and measures how long the server keeps each one.
 *
 * The client must read. The server answers a connection that sends no request head within
 * `headersTimeout` with a 408 and its FIN, and destroys it a second later. A client that does not
 * read keeps the 408 in its stream's buffer, and a Node stream with unread data never emits 'end':
 * the FIN, and the destroy after it, stay invisible, and the connection looks open until the
 * client gives up itself. The first version of this probe did not read, and reported its own 45 s
 * give-up, counted from the end of the handshake (36.9-38.4 s on a loaded machine), as the
 * server's time; the server had closed every connection after 11 s (10 s headers timeout, checked
 * every 1 s). Here every socket reads (and drops) what arrives, so the time is when the server's
 * close reached the client, and a connection still open at the cap is counted as such, never as
 * a time.
 */
import * as tls from "node:tls";

export interface IdleResult {
  /** Seconds from each handshake's end until the server's close arrived, ascending. */
  closedAfter: number[];
  /** Handshakes that never finished: refused at accept (connection cap) or by the backlog. */
  refused: number;
  /** Connections still open when the probe gave up after `capS` (the server never closed them). */
  stillOpen: number;
}

/** Opens `count` TLS connections at once to 127.0.0.1:`port`, each sending nothing. */
export async function idleConnections(
  port: number,
  ca: string,
  count: number,
  capS: number,
): Promise<IdleResult> {
  const closedAfter: number[] = [];
  let refused = 0;
  let stillOpen = 0;
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          let connectedAt: number | undefined;
          let settled = false;
          const settle = (how: "closed" | "cap") => {
            if (settled) return;
            settled = true;
            clearTimeout(cap);
            if (connectedAt === undefined) refused++;
            else if (how === "cap") stillOpen++;
            else closedAfter.push((Date.now() - connectedAt) / 1000);
            s.destroy();
            resolve();
          };
          const s = tls.connect({ host: "127.0.0.1", port, ca }, () => (connectedAt = Date.now()));
          // Read and drop (a 408, a close_notify): only a reading socket sees the FIN or RST.
          s.resume();
          const cap = setTimeout(() => settle("cap"), capS * 1000);
          s.on("end", () => settle("closed"));
          s.on("error", () => settle("closed"));
          s.on("close", () => settle("closed"));
        }),
    ),
  );
  return { closedAfter: closedAfter.sort((x, y) => x - y), refused, stillOpen };
}
