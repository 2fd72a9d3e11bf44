/**
 * `startWebhookServer` in a process of its own, for tests whose client must not share an event
 * loop with the server (a client in the server's own process notices some closes that a remote
 * one does not). Run as `node --import tsx webhookProcess.ts '<options JSON>'`; prints
 * `{"port":N}` on stdout once listening; SIGTERM or SIGKILL ends it.
 */
import { enforcementRules } from "vnode-contract";
import { startWebhookServer } from "../../agent/src/webhook/server";
import { RULES } from "./admissionCases";

const { listen, ...opts } = JSON.parse(process.argv[2] ?? "{}") as {
  listen?: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  idleTimeoutMs?: number;
  headersTimeoutMs?: number;
};
void startWebhookServer({
  listen: listen ?? "127.0.0.1:0",
  rules: enforcementRules(RULES),
  ...opts,
}).then(
  (server) => process.stdout.write(`${JSON.stringify({ port: server.address.port })}\n`),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
