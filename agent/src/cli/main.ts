/**
 * `vnode-agent`: the CLI. It only parses flags into installer options, runs one command and
 * maps errors to exit codes (0 done, 2 bad input, 3 preflight failed, 4 verification failed).
 */
import { existsSync, statSync } from "node:fs";
import * as os from "node:os";
import { Command, CommanderError } from "commander";
import {
  AGENT_COMMANDS,
  AGENT_IMAGE,
  type FlagValues,
  type INSTALLER_FLAGS,
  NODE_NAME_ENV,
  type OUTPUT_FLAGS,
  type RunOptions,
  type WebhookFlagOptions,
} from "vnode-contract";
import { AgentError, ExitCode, badInput, messageOf } from "../lib/errors";
import type { InstallerOptions } from "../installer/installer";
import { modeFromEnv } from "../lib/isolationMode";
import {
  formatPreflight,
  parseMinContainerd,
  parseSkipList,
  preflightPassed,
} from "../installer/preflight";
import { webhookOptions } from "../webhook/flags";
import { withFlags } from "./flags";

declare const AGENT_VERSION: string;

// Heavy modules (gRPC, TOML, the installer) load on first use, inside the command that needs
// them: `--version`, `--help` and bad flags answer at bare-node speed.
const installer = () => import("../installer/installer");
const logger = async () =>
  (await import("../lib/log")).createLogger(process.env[NODE_NAME_ENV] ?? os.hostname());

type InstallerFlags = FlagValues<typeof INSTALLER_FLAGS>;
type OutputFlags = FlagValues<typeof OUTPUT_FLAGS>;

function payloadDirOf(f: InstallerFlags): string | undefined {
  if (f.payloadDir !== undefined) {
    if (!existsSync(f.payloadDir) || !statSync(f.payloadDir).isDirectory()) {
      throw badInput(`--payload-dir ${f.payloadDir} is not a directory.`);
    }
    return f.payloadDir;
  }
  return existsSync(AGENT_IMAGE.payloadDir) ? AGENT_IMAGE.payloadDir : undefined;
}

/** Turns parsed flags into installer options; every bad value names its flag. */
export function installerOptions(f: InstallerFlags, env = process.env): InstallerOptions {
  if (f.restart === "command" && !f.restartCommand) {
    throw badInput("--restart command needs --restart-command CMD.");
  }
  if (f.restartCommand && f.restart !== "command") {
    throw badInput(
      `--restart-command is only used with --restart command; got --restart ${f.restart}.`,
    );
  }
  if (!existsSync(f.hostRoot)) throw badInput(`--host-root ${f.hostRoot} does not exist.`);
  return {
    hostRoot: f.hostRoot,
    containerd: {
      distribution: f.containerdDistribution,
      config: f.containerdConfig,
      socket: f.containerdSocket,
    },
    handler: {
      name: f.handler,
      runtimeType: f.runtimeType,
      ...(f.runtimePath === undefined ? {} : { runtimePath: f.runtimePath }),
      ...(f.podAnnotations === undefined ? {} : { podAnnotations: f.podAnnotations }),
    },
    isolationMode: modeFromEnv(env),
    payloadDir: payloadDirOf(f),
    installDir: f.installDir,
    cniConfDir: f.cniConfDir,
    stateDir: f.stateDir,
    restart: {
      strategy: f.restart,
      command: f.restartCommand,
      unit: f.restartUnit,
    },
    verify: f.verify,
    skipPreflight: parseSkipList(f.skipPreflight),
    minContainerd: parseMinContainerd(f.minContainerd),
  };
}

const print = (text: string) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);

export function buildProgram(): Command {
  const program = new Command("vnode-agent")
    .description("Installs, verifies and removes the vNode runtime handler in containerd.")
    .version(typeof AGENT_VERSION === "string" ? AGENT_VERSION : "0.0.0-dev")
    .exitOverride()
    .showHelpAfterError("(run vnode-agent <command> --help for usage)");

  withFlags(program.command("preflight"), AGENT_COMMANDS.preflight)
    .description("check kernel, cgroup v2, containerd version and config version")
    .action(async (f: InstallerFlags) => {
      const results = await (await installer()).preflight(installerOptions(f));
      print(formatPreflight(results));
      if (!preflightPassed(results)) process.exitCode = ExitCode.PreflightFailed;
    });

  withFlags(program.command("plan"), AGENT_COMMANDS.plan)
    .description("dry run: the diff of every file install would change, and whether it restarts")
    .action(async (f: InstallerFlags & OutputFlags) => {
      const { plan, planJson, formatPlan } = await installer();
      const p = await plan(installerOptions(f));
      print(f.json ? JSON.stringify(planJson(p), null, 2) : formatPlan(p));
    });

  withFlags(program.command("install"), AGENT_COMMANDS.install)
    .description("register the handler, install the payload, restart containerd, verify")
    .action(async (f: InstallerFlags) => {
      const r = await (await installer()).install(installerOptions(f), await logger());
      const changed =
        r.plan.changes.length +
        r.plan.artifacts.filter((a) => a.action !== "unchanged").length +
        r.plan.links.filter((l) => l.action !== "unchanged").length;
      print(
        `installed handler ${f.handler}: ${changed} change(s), containerd ${r.restart?.restarted ? "restarted" : "not restarted"}` +
          (f.verify === "cri" && r.handlers.length > 0
            ? `, CRI handlers: ${r.handlers.join(", ")}`
            : ""),
      );
    });

  withFlags(program.command("uninstall"), AGENT_COMMANDS.uninstall)
    .description("remove the handler and the payload, restoring the original config")
    .action(async (f: InstallerFlags) => {
      const r = await (await installer()).uninstall(installerOptions(f), await logger());
      print(
        r.installed
          ? `uninstalled: config ${r.configChanged ? "restored" : "unchanged"}, containerd ${r.restart?.restarted ? "restarted" : "not restarted"}`
          : "nothing to uninstall",
      );
    });

  withFlags(program.command("status"), AGENT_COMMANDS.status)
    .description("what the ledger says is installed, and whether the CRI reports the handler")
    .action(async (f: InstallerFlags & OutputFlags) => {
      const s = await (await installer()).status(installerOptions(f));
      if (f.json) {
        print(JSON.stringify(s, null, 2));
        return;
      }
      const live = s.criHandlers?.includes(f.handler);
      print(
        [
          `ledger: ${s.ledger ? `installed by agent ${s.ledger.agentVersion} (${s.ledger.isolationMode}), ${s.ledger.files.length} file(s), ${s.ledger.artifacts.length} artifact(s)` : "none"}`,
          `config: handler ${f.handler} ${s.configured ? "registered" : "not registered"}`,
          `cri: ${s.criHandlers === null ? `unreachable (${s.criError})` : `handler ${f.handler} ${live ? "live" : "missing"}`}`,
        ].join("\n"),
      );
    });

  withFlags(program.command("run"), AGENT_COMMANDS.run)
    .description(
      "the DaemonSet's daemon: install, label the node, serve health and metrics, repair drift, " +
        "uninstall on SIGTERM when the node leaves the runtime",
    )
    .action(async (f: RunOptions) => {
      const { runAgent } = await import("../daemon/daemon");
      const code = await runAgent(f, () => installerOptions(f));
      // Keep-alive sockets (API server, CRI) would hold the event loop open.
      process.exit(code);
    });

  withFlags(program.command("webhook"), AGENT_COMMANDS.webhook)
    .description(
      "serve the tenancy admission webhook over HTTPS: POST /mutate[/MODE] sets the mode's " +
        "RuntimeClass on pods without one, POST /validate denies non-vNode pods and hostPort/hostIP",
    )
    .action(async (f: WebhookFlagOptions) => {
      const opts = webhookOptions(f);
      const { runWebhook } = await import("../webhook/run");
      await runWebhook(opts, await logger());
    });

  return program;
}

/** Maps an error to its exit code and one sentence on stderr. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help / --version end through here too, with code 0.
    return err.exitCode === 0 ? ExitCode.Ok : ExitCode.BadInput;
  }
  // ConfigError is an AgentError too (exit 2).
  if (err instanceof AgentError) return err.exitCode;
  return ExitCode.Failure;
}

/** Runs the CLI; the process exits with the command's code. */
export function cli(argv: string[]): void {
  buildProgram()
    .parseAsync(argv)
    .catch((err: unknown) => {
      const code = exitCodeFor(err);
      if (!(err instanceof CommanderError)) {
        process.stderr.write(`vnode-agent: ${messageOf(err)}\n`);
        // An unexpected error is a bug: keep its stack. CRI errors are already one sentence.
        if (code === ExitCode.Failure && err instanceof Error && err.name !== "CriError") {
          process.stderr.write(`${err.stack}\n`);
        }
      }
      process.exit(code);
    });
}

// Run directly (the image links the bundle as `vnode-agent`) or through agent/bin (npm).
if (require.main === module) cli(process.argv);
