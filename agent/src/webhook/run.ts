/**
 * `vnode-agent webhook` as a process: start the server, reload the certificate on SIGHUP too,
 * and on SIGTERM/SIGINT fail /readyz first, wait `--shutdown-delay` so the Service stops sending
 * reviews here, then let requests in flight finish and exit.
 */
import type { Logger } from "../lib/log";
import type { WebhookOptions } from "./flags";
import { startWebhookServer } from "./server";

/** Longest a request in flight may take after the listener closed. */
const DRAIN_MS = 10_000;

export async function runWebhook(opts: WebhookOptions, log: Logger): Promise<void> {
  const server = await startWebhookServer({ ...opts, log: log.child({ phase: "webhook" }) });
  log.info(
    {
      phase: "webhook",
      classes: opts.rules.classes,
      defaultMode: opts.rules.defaultMode,
      excludedNamespaces: opts.rules.excludedNamespaces,
    },
    "enforcing tenancy rules",
  );
  const onHup = () => void server.reload();
  process.on("SIGHUP", onHup);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      process.off("SIGHUP", onHup);
      log.info({ phase: "webhook", signal, delayMs: opts.shutdownDelayMs }, "shutting down");
      server.setNotReady(`shutting down (${signal})`);
      setTimeout(() => {
        server.close(DRAIN_MS).then(resolve, (err: unknown) => {
          log.warn({ phase: "webhook", reason: String(err) }, "close failed");
          resolve();
        });
      }, opts.shutdownDelayMs);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  log.info({ phase: "webhook" }, "stopped");
}
