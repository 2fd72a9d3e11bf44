import { Command } from "commander";

declare const AGENT_VERSION: string;

const program = new Command("vnode-agent")
  .description("Installs, verifies and removes the vNode runtime handler in containerd.")
  .version(typeof AGENT_VERSION === "string" ? AGENT_VERSION : "0.0.0-dev");

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
