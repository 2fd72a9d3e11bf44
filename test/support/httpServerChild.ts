/**
 * A child process serving one of the agent's two HTTP servers on loopback, for tests that must
 * see whether the process survives what a client sends (an uncaught throw would end it):
 * `node --import tsx httpServerChild.ts health` or `... webhook CERT KEY`. Prints one JSON line
 * `{"url": ...}` on stdout once listening; runs until killed.
 */
import { Registry } from "prom-client";
import { enforcementRules } from "vnode-contract";
import { HealthState, startHealthServer } from "../../agent/src/daemon/health";
import { startWebhookServer } from "../../agent/src/webhook/server";
import { RULES } from "./admissionCases";

async function main(): Promise<void> {
  const [kind, cert, key] = process.argv.slice(2);
  if (kind === "health") {
    const state = new HealthState(24 * 3600 * 1000);
    state.setReadiness({ handlerVerified: true, labelsSet: true });
    const server = await startHealthServer({
      listen: "127.0.0.1:0",
      state,
      registry: new Registry(),
    });
    process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
  } else if (kind === "webhook") {
    const server = await startWebhookServer({
      listen: "127.0.0.1:0",
      tlsCertFile: cert,
      tlsKeyFile: key,
      rules: enforcementRules(RULES),
    });
    process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
  } else {
    throw new Error(`usage: httpServerChild.ts health | webhook CERT KEY; got ${kind}`);
  }
}

void main();
