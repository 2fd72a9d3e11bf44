/**
 * A child process that runs the agent's state protocol (host lock, ledger, atomic writes,
 * artifacts) the way install/uninstall do, so a test can SIGKILL it at a chosen point and
 * rerun it: `node --import tsx stateDriver.ts install|uninstall HOST_ROOT PAYLOAD_DIR`.
 * SAVE_DONE=deferred runs install with deferred done saves (see applyFileChange).
 *
 * FAULT=`open:<host path>#n` kills this process when it opens its n-th temp file for that
 * path (the ledger already holds the intent; nothing written yet); `rename:<host path>#n`
 * kills it just before the n-th rename onto that path (the temp file is complete).
 */
import * as path from "node:path";
import { installArtifacts, removeArtifacts } from "../../agent/src/host/artifacts";
import { isTempFile, readIfExists } from "../../agent/src/host/fsAtomic";
import { hostPath } from "../../agent/src/host/paths";
import {
  applyFileChange,
  loadLedger,
  newLedger,
  removeLedger,
  removeLeftovers,
  revertFile,
  saveLedgerIfChanged,
  type LedgerMeta,
} from "../../agent/src/host/ledger";
import { withHostLock } from "../../agent/src/host/lock";

export const CONFIG = "/etc/containerd/config.toml";
export const DROP_IN = "/etc/containerd/conf.d/vnode.toml";
export const DROP_IN_TEXT = '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.vnode]\n';
export const BLOCK =
  '\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode]\n  runtime_type = "io.containerd.vnode.v2"\n';

export const META: LedgerMeta = {
  agentVersion: "0.1.0",
  handler: { name: "vnode", runtimeType: "io.containerd.vnode.v2" },
  isolationMode: "per-namespace",
  containerd: {
    configPath: CONFIG,
    configVersion: 2,
    version: "1.7.27",
    distribution: "containerd",
  },
};

function installFault(hostRoot: string, spec: string | undefined): void {
  if (!spec) return;
  const m = /^(open|rename):(\/[^#]+)#(\d+)$/.exec(spec);
  if (!m)
    throw new Error(`FAULT must look like rename:/etc/containerd/config.toml#1; got "${spec}".`);
  const [, op, hostFile, nth] = m;
  const target = hostPath(hostRoot, hostFile);
  let seen = 0;
  const hit = () => {
    if (++seen === Number(nth)) process.kill(process.pid, "SIGKILL");
  };
  // fsAtomic reads these off the module object at each call, so patching the real module
  // object (not the import namespace, whose properties are getters) reaches it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require("node:fs/promises") as Record<string, (...a: unknown[]) => unknown>;
  const original = mod[op];
  mod[op] = (...args: unknown[]) => {
    const [a, b] = args as [string, string];
    if (op === "open" && path.dirname(a) === path.dirname(target) && isTempFile(a, target)) hit();
    if (op === "rename" && b === target) hit();
    return original.apply(mod, args);
  };
}

async function main(): Promise<void> {
  const [cmd, hostRoot, payloadDir] = process.argv.slice(2);
  installFault(hostRoot, process.env.FAULT);
  const loc = { hostRoot };
  await withHostLock(
    hostRoot,
    async () => {
      let ledger = await loadLedger(loc);
      await removeLeftovers(loc, ledger);
      if (cmd === "install") {
        ledger ??= newLedger(META);
        const current = (
          (await readIfExists(hostPath(hostRoot, CONFIG))) ?? Buffer.alloc(0)
        ).toString();
        // SAVE_DONE=deferred: done marks ride along with the next intent and the last ones are
        // saved once at the end, as the installer does.
        const saveDone = process.env.SAVE_DONE !== "deferred";
        ({ ledger } = await applyFileChange(
          loc,
          ledger,
          CONFIG,
          current.includes(BLOCK) ? current : current + BLOCK,
          { saveDone },
        ));
        ({ ledger } = await applyFileChange(loc, ledger, DROP_IN, DROP_IN_TEXT, { saveDone }));
        ({ ledger } = await installArtifacts(loc, ledger, { payloadDir, saveDone }));
        if (!saveDone) await saveLedgerIfChanged(loc, ledger);
      } else if (cmd === "uninstall") {
        if (ledger === null) return;
        for (const entry of ledger.files) {
          await revertFile(loc, entry, (cur) => Buffer.from(cur.toString().replace(BLOCK, "")));
        }
        await removeArtifacts(hostRoot, ledger.artifacts);
        await removeLedger(loc);
      } else {
        throw new Error(`unknown command ${cmd}`);
      }
    },
    { timeoutMs: 20000, pollMs: 20 },
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
