/**
 * One POST of a JSON body to a webhook on loopback over its own TLS connection (no keep-alive
 * agent), trusting `ca`: the status and the body as text.
 */
import * as https from "node:https";

export function postReview(
  port: number,
  ca: string,
  path: string,
  body: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        ca,
        agent: false,
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
