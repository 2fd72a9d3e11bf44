/**
 * `vnode-agent`: the CLI. It only parses flags into installer options, runs one command and
 * maps errors to exit codes (0 done, 2 bad input, 3 preflight failed, 4 verification failed).
 */
import { existsSync, statSync } from "node:fs";
import * as os from "node:os";
import { Command, CommanderError, Option } from "commander";
import {
  AGENT_DEFAULTS,
  AGENT_IMAGE,
  CONTAINERD_DISTRIBUTIONS,
  NODE_NAME_ENV,
  POD_NAMESPACE_ENV,
  RESTART_STRATEGIES,
} from "vnode-contract";
import { RUN_DEFAULTS, type RunFlags } from "../daemon/options";
import { AgentError, ExitCode, badInput } from "../lib/errors";
import type { InstallerOptions } from "../installer/installer";
import { modeFromEnv } from "../lib/isolationMode";
import {
  formatPreflight,
  parseMinContainerd,
  parseSkipList,
  preflightPassed,
} from "../installer/preflight";
import { type WebhookFlags, webhookOptions, withWebhookFlags } from "../webhook/flags";

declare const AGENT_VERSION: string;

// Heavy modules (gRPC, TOML, the installer) load on first use, inside the command that needs
// them: `--version`, `--help` and bad flags answer at bare-node speed.
const installer = () => import("../installer/installer");
const logger = async () =>
  (await import("../lib/log")).createLogger(process.env[NODE_NAME_ENV] ?? os.hostname());

interface Flags {
  hostRoot: string;
  containerdConfig?: string;
  containerdSocket?: string;
  containerdDistribution: string;
  handler: string;
  runtimeType: string;
  runtimePath?: string;
  podAnnotations?: string;
  payloadDir?: string;
  installDir: string;
  stateDir: string;
  restart: string;
  restartCommand?: string;
  restartUnit?: string;
  verify: string;
  skipPreflight?: string;
  minContainerd?: string;
  json?: boolean;
}

/** Flags every command shares; `run` (the daemon) adds its own. */
export function withCommonFlags(cmd: Command): Command {
  return cmd
    .option("--host-root <dir>", "where the host's filesystem is mounted", AGENT_DEFAULTS.hostRoot)
    .option("--containerd-config <path>", "containerd config (host path); default: auto-detect")
    .option("--containerd-socket <path>", "containerd CRI socket (host path); default: per layout")
    .addOption(
      new Option("--containerd-distribution <name>", "containerd layout")
        .choices(["auto", ...Object.keys(CONTAINERD_DISTRIBUTIONS)])
        .default("auto"),
    )
    .option(
      "--handler <name>",
      "runtime handler name (RuntimeClass handler)",
      AGENT_DEFAULTS.handler,
    )
    .option("--runtime-type <type>", "containerd shim runtime type", AGENT_DEFAULTS.runtimeType)
    .option("--runtime-path <path>", "shim binary path when not on containerd's PATH")
    .option("--pod-annotations <list>", "comma-separated pod annotations passed to the runtime")
    .option(
      "--payload-dir <dir>",
      `files to install (default ${AGENT_IMAGE.payloadDir} if present)`,
    )
    .option("--install-dir <dir>", "host dir for the payload", AGENT_DEFAULTS.installDir)
    .option("--state-dir <dir>", "host dir for the ledger and lock", AGENT_DEFAULTS.stateDir)
    .addOption(
      new Option("--restart <strategy>", "how to restart containerd")
        .choices([...RESTART_STRATEGIES])
        .default("systemd"),
    )
    .option("--restart-command <cmd>", "shell command for --restart command")
    .option("--restart-unit <unit>", "systemd unit for --restart systemd (default per layout)")
    .addOption(
      new Option("--verify <how>", "how to verify the handler")
        .choices(["cri", "none"])
        .default("cri"),
    )
    .option("--skip-preflight <checks>", "comma-separated checks to skip, or all")
    .option("--min-containerd <version>", "lowest containerd version accepted", "1.7");
}

function payloadDirOf(f: Flags): string | undefined {
  if (f.payloadDir !== undefined) {
    if (!existsSync(f.payloadDir) || !statSync(f.payloadDir).isDirectory()) {
      throw badInput(`--payload-dir ${f.payloadDir} is not a directory.`);
    }
    return f.payloadDir;
  }
  return existsSync(AGENT_IMAGE.payloadDir) ? AGENT_IMAGE.payloadDir : undefined;
}

/** Turns parsed flags into installer options; every bad value names its flag. */
export function installerOptions(f: Flags, env = process.env): InstallerOptions {
  if (f.restart === "command" && !f.restartCommand) {
    throw badInput("--restart command needs --restart-command CMD.");
  }
  if (f.restartCommand && f.restart !== "command") {
    throw badInput(
      `--restart-command is only used with --restart command; got --restart ${f.restart}.`,
    );
  }
  if (!existsSync(f.hostRoot)) throw badInput(`--host-root ${f.hostRoot} does not exist.`);
  const annotations = f.podAnnotations
    ?.split(",")
    .map((a) => a.trim())
    .filter((a) => a.length > 0);
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
      ...(annotations === undefined ? {} : { podAnnotations: annotations }),
    },
    isolationMode: modeFromEnv(env),
    payloadDir: payloadDirOf(f),
    installDir: f.installDir,
    stateDir: f.stateDir,
    restart: {
      strategy: f.restart as InstallerOptions["restart"]["strategy"],
      command: f.restartCommand,
      unit: f.restartUnit,
    },
    verify: f.verify as "cri" | "none",
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

  withCommonFlags(program.command("preflight"))
    .description("check kernel, cgroup v2, containerd version and config version")
    .action(async (f: Flags) => {
      const results = await (await installer()).preflight(installerOptions(f));
      print(formatPreflight(results));
      if (!preflightPassed(results)) process.exitCode = ExitCode.PreflightFailed;
    });

  withCommonFlags(program.command("plan"))
    .description("dry run: the diff of every file install would change, and whether it restarts")
    .option("--json", "machine-readable output")
    .action(async (f: Flags) => {
      const { plan, planJson, formatPlan } = await installer();
      const p = await plan(installerOptions(f));
      print(f.json ? JSON.stringify(planJson(p), null, 2) : formatPlan(p));
    });

  withCommonFlags(program.command("install"))
    .description("register the handler, install the payload, restart containerd, verify")
    .action(async (f: Flags) => {
      const r = await (await installer()).install(installerOptions(f), await logger());
      const changed =
        r.plan.changes.length + r.plan.artifacts.filter((a) => a.action !== "unchanged").length;
      print(
        `installed handler ${f.handler}: ${changed} change(s), containerd ${r.restart?.restarted ? "restarted" : "not restarted"}` +
          (f.verify === "cri" && r.handlers.length > 0
            ? `, CRI handlers: ${r.handlers.join(", ")}`
            : ""),
      );
    });

  withCommonFlags(program.command("uninstall"))
    .description("remove the handler and the payload, restoring the original config")
    .action(async (f: Flags) => {
      const r = await (await installer()).uninstall(installerOptions(f), await logger());
      print(
        r.installed
          ? `uninstalled: config ${r.configChanged ? "restored" : "unchanged"}, containerd ${r.restart?.restarted ? "restarted" : "not restarted"}`
          : "nothing to uninstall",
      );
    });

  withCommonFlags(program.command("status"))
    .description("what the ledger says is installed, and whether the CRI reports the handler")
    .option("--json", "machine-readable output")
    .action(async (f: Flags) => {
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

  withCommonFlags(program.command("run"))
    .description(
      "the DaemonSet's daemon: install, label the node, serve health and metrics, repair drift, " +
        "uninstall on SIGTERM when the node leaves the runtime",
    )
    .option("--listen <addr>", "HTTP address for /healthz, /readyz, /metrics", RUN_DEFAULTS.listen)
    .option("--interval <duration>", "time between reconcile passes", RUN_DEFAULTS.interval)
    .option("--daemonset <name>", "the agent's DaemonSet, to tell a rolling update from a removal")
    .option("--namespace <ns>", `the DaemonSet's namespace (default: $${POD_NAMESPACE_ENV})`)
    .option(
      "--runtime-classes <list>",
      "comma-separated RuntimeClasses using the handler (default: <handler> and <handler>-*)",
    )
    .option("--manager-command <cmd>", "the runtime's manager process to supervise (sh -c)")
    .option("--force-uninstall", "uninstall on removal even while vNode pods run on the node")
    .option(
      "--max-restarts <n>",
      "containerd restarts allowed per --restart-window",
      RUN_DEFAULTS.maxRestarts,
    )
    .option("--restart-window <duration>", "window of --max-restarts", RUN_DEFAULTS.restartWindow)
    .option(
      "--uninstall-pod-wait <duration>",
      "on removal, how long to wait for vNode pods to go before refusing",
      RUN_DEFAULTS.uninstallPodWait,
    )
    .option("--kube-api-server <url>", "API server URL instead of the in-cluster config")
    .option("--kube-token-file <path>", "bearer token file for --kube-api-server")
    .action(async (f: Flags & RunFlags) => {
      const { runAgent } = await import("../daemon/daemon");
      const code = await runAgent(f, () => installerOptions(f));
      // Keep-alive sockets (API server, CRI) would hold the event loop open.
      process.exit(code);
    });

  withWebhookFlags(program.command("webhook"))
    .description(
      "serve the tenancy admission webhook over HTTPS: POST /mutate[/MODE] sets the mode's " +
        "RuntimeClass on pods without one, POST /validate denies non-vNode pods and hostPort/hostIP",
    )
    .action(async (f: WebhookFlags) => {
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
        console.error(`vnode-agent: ${err instanceof Error ? err.message : String(err)}`);
        // An unexpected error is a bug: keep its stack. CRI errors are already one sentence.
        if (code === ExitCode.Failure && err instanceof Error && err.name !== "CriError") {
          console.error(err.stack);
        }
      }
      process.exit(code);
    });
}

// Run directly (the image links the bundle as `vnode-agent`) or through agent/bin (npm).
if (require.main === module) cli(process.argv);
