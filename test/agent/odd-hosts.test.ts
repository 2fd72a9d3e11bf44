/**
 * Real-world hosts the first fixture corpus lacked (issue 12): configs another tool rewrote
 * after install, symlinked configs, bytes that are not UTF-8, a BOM, a disabled CRI plugin, a
 * version 2 file with containerd 2.x plugin ids, a read-only config dir, and what a SIGKILL
 * during a backup leaves. Each runs the installer (install / uninstall, `--restart none
 * --verify none`, no containerd needed) or the planner on a temp host root, and asserts the
 * exact bytes, errors and leftovers.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse, stringify } from "smol-toml";
import { ConfigError } from "../../agent/src/containerd/config/config";
import { detectLayout } from "../../agent/src/containerd/config/layout";
import { renderBlock, RUNTIME_BLOCK } from "../../agent/src/containerd/config/managed-block";
import { planRegister } from "../../agent/src/containerd/config/plan";
import { collectConfigFiles, hostFiles } from "../../agent/src/containerd/config/snapshot";
import { addFileIntent, newLedger, saveLedger } from "../../agent/src/host/ledger";
import {
  install,
  type InstallerOptions,
  recordedRuntime,
  uninstall,
} from "../../agent/src/installer/installer";
import { parseMinContainerd, parseSkipList } from "../../agent/src/installer/preflight";
import { createLogger } from "../../agent/src/lib/log";
import { listFiles } from "../support/hostRoot";

const log = createLogger("test", "silent");
/** A parsed config, walked by key in the assertions. */
type Doc = {
  plugins: Record<string, { containerd: { runtimes: Record<string, Record<string, unknown>> } }>;
};
const CFG = "/etc/containerd/config.toml";
const STATE = "/var/lib/vnode-agent";
const V2_BLOCK = renderBlock(
  RUNTIME_BLOCK,
  '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode]\n  runtime_type = "io.containerd.vnode.v2"\n' +
    // With a payload: the installed shim link and the handler's own CNI conf dir.
    '  runtime_path = "/opt/vnode/bin/containerd-shim-vnode-v2"\n' +
    '  cni_conf_dir = "/etc/vnode/cni/net.d"\n' +
    "  cni_max_conf_num = 1\n",
);
const KUBEADM = fs.readFileSync(
  path.join(__dirname, "../fixtures/containerd/containerd-1.7-kubeadm", CFG),
);

let root: string;
const at = (p: string) => path.join(root, p);
const put = (p: string, bytes: string | Buffer) => {
  fs.mkdirSync(path.dirname(at(p)), { recursive: true });
  fs.writeFileSync(at(p), bytes);
};
const options = (payload?: string): InstallerOptions => ({
  hostRoot: root,
  containerd: { distribution: "containerd" },
  handler: { name: "vnode", runtimeType: "io.containerd.vnode.v2" },
  isolationMode: "per-namespace",
  ...(payload === undefined ? {} : { payloadDir: payload }),
  installDir: "/opt/vnode/bin",
  stateDir: STATE,
  restart: { strategy: "none" },
  verify: "none",
  skipPreflight: parseSkipList("all"),
  minContainerd: parseMinContainerd(undefined),
});
let payload: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-odd-"));
  payload = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-odd-payload-"));
  fs.writeFileSync(path.join(payload, "containerd-shim-vnode-v2"), "#!/bin/sh\n", { mode: 0o755 });
  fs.symlinkSync("containerd-shim-vnode-v2", path.join(payload, "vnode-cni"));
  fs.symlinkSync("containerd-shim-vnode-v2", path.join(payload, "vnode-manager"));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(payload, { recursive: true, force: true });
});

async function plan(files: Record<string, string>) {
  for (const [p, t] of Object.entries(files)) put(p, t);
  const layout = detectLayout((p) => fs.existsSync(at(p)), { distribution: "containerd" });
  const snapshot = await collectConfigFiles(layout, hostFiles(root));
  return planRegister(layout, snapshot, options().handler);
}

describe("1. a config another tool rewrote after install (comments and markers gone)", () => {
  /**
   * nvidia-ctk / the GPU operator's toolkit / `containerd config migrate` parse the file and write
   * it back (go-toml): comments go, tables stay. smol-toml's stringify does the same here.
   */
  const reserialize = () => put(CFG, stringify(parse(fs.readFileSync(at(CFG), "utf8"))) + "\n");

  it("install re-adopts the recorded table (no exit 2), uninstall removes it and the shim", async () => {
    put(CFG, KUBEADM);
    await install(options(payload), log);
    reserialize();
    expect(fs.readFileSync(at(CFG), "utf8")).not.toContain("# BEGIN vnode-agent");
    const rewritten = fs.readFileSync(at(CFG), "utf8");

    const again = await install(options(payload), log);
    expect(again.plan.changes.map((c) => c.purpose)).toEqual([
      'remove runtime "vnode", which vnode-agent added and another tool rewrote without its block; add runtime handler "vnode" in a vnode-agent block',
    ]);
    expect(again.plan.restart).toBe(false);
    const readopted = fs.readFileSync(at(CFG), "utf8");
    expect(readopted.split("runtimes.vnode]").length).toBe(2);
    expect(readopted.endsWith("\n" + V2_BLOCK)).toBe(true);

    reserialize();
    const r = await uninstall(options(payload), log);
    expect(r.installed).toBe(true);
    const left = parse(fs.readFileSync(at(CFG), "utf8")) as unknown as Doc;
    expect(left.plugins["io.containerd.grpc.v1.cri"].containerd.runtimes.vnode).toBeUndefined();
    expect(Object.keys(left.plugins["io.containerd.grpc.v1.cri"].containerd.runtimes)).toEqual([
      "runc",
    ]);
    expect(fs.existsSync(at("/opt/vnode/bin/containerd-shim-vnode-v2"))).toBe(false);
    expect(fs.existsSync(at(STATE))).toBe(false);
    expect(rewritten).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode]');
  });

  it("uninstall refuses loudly and keeps the shim when the table no longer matches the record", async () => {
    put(CFG, KUBEADM);
    await install(options(payload), log);
    const doc = parse(fs.readFileSync(at(CFG), "utf8")) as unknown as Doc;
    doc.plugins[
      "io.containerd.grpc.v1.cri"
    ].containerd.runtimes.vnode.privileged_without_host_devices = true;
    put(CFG, stringify(doc) + "\n");
    await expect(uninstall(options(payload), log)).rejects.toThrow(
      `runtime "vnode" is still registered in containerd's config (${CFG}) outside a vnode-agent block and not as the agent recorded it; remove it by hand, then rerun uninstall. The payload and the ledger stay until then.`,
    );
    expect(fs.existsSync(at("/opt/vnode/bin/containerd-shim-vnode-v2"))).toBe(true);
    expect(fs.existsSync(at(`${STATE}/ledger.json`))).toBe(true);
  });

  it("recordedRuntime is the table the ledger's handler renders", () => {
    const meta = {
      agentVersion: "1",
      handler: { name: "vnode", runtimeType: "io.containerd.vnode.v2", podAnnotations: ["a/*"] },
      isolationMode: "per-pod" as const,
      containerd: { configPath: CFG, configVersion: 2, version: null },
    };
    expect(recordedRuntime(newLedger(meta))).toEqual({
      name: "vnode",
      table: { runtime_type: "io.containerd.vnode.v2", pod_annotations: ["a/*"] },
    });
    expect(recordedRuntime(null)).toBeUndefined();
  });
});

describe("3. a symlinked config.toml, resolved inside --host-root", () => {
  it.each([
    ["relative", "../../srv/cm/containerd.toml"],
    ["absolute", "/srv/cm/containerd.toml"],
  ])("%s link: the target is edited, the link kept, both restored", async (_kind, target) => {
    put("/srv/cm/containerd.toml", KUBEADM);
    fs.mkdirSync(at("/etc/containerd"), { recursive: true });
    fs.symlinkSync(target, at(CFG));
    await install(options(payload), log);
    expect(fs.lstatSync(at(CFG)).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(at(CFG))).toBe(target);
    expect(fs.readFileSync(at("/srv/cm/containerd.toml"), "utf8")).toBe(
      KUBEADM.toString() + "\n" + V2_BLOCK,
    );
    await uninstall(options(payload), log);
    expect(fs.readlinkSync(at(CFG))).toBe(target);
    expect(fs.readFileSync(at("/srv/cm/containerd.toml"))).toEqual(KUBEADM);
    expect(listFiles(at("/srv/cm"))).toEqual(["containerd.toml"]);
    expect(listFiles(at("/etc/containerd"))).toEqual(["config.toml"]);
  });
});

describe("4. bytes that are not UTF-8", () => {
  it("install changes no byte outside its block; uninstall restores every byte", async () => {
    const latin1 = Buffer.concat([
      Buffer.from("version = 2\n# R\xe9gion: Z\xfcrich (Latin-1)\n", "latin1"),
      Buffer.from('[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]\n'),
      Buffer.from('  password = "p\xe4ss\xff"\n', "latin1"),
      Buffer.from("# UTF-8 too: Zürich 😀\n"),
    ]);
    put(CFG, latin1);
    await install(options(), log);
    const written = fs.readFileSync(at(CFG));
    expect(written.subarray(0, latin1.length)).toEqual(latin1);
    const added = written.subarray(latin1.length).toString("utf8");
    expect(added.startsWith("\n# BEGIN vnode-agent (managed, do not edit)\n")).toBe(true);
    expect(added.endsWith("# END vnode-agent\n")).toBe(true);
    expect(added).toContain('runtimes.vnode]\n  runtime_type = "io.containerd.vnode.v2"\n');
    // The restore path that works on the current bytes (someone appended a comment since).
    fs.appendFileSync(at(CFG), Buffer.from("# caf\xe9\n", "latin1"));
    await uninstall(options(), log);
    expect(fs.readFileSync(at(CFG))).toEqual(
      Buffer.concat([latin1, Buffer.from("# caf\xe9\n", "latin1")]),
    );
  });
});

describe("5. a UTF-8 byte order mark", () => {
  it("version 3 without imports: the imports entry goes after the version line, the BOM stays first", async () => {
    const changes = await plan({
      [CFG]: "\uFEFFversion = 3\n\n[grpc]\n  address = '/run/x.sock'\n",
    });
    expect(changes.map((c) => [c.path, c.after])).toEqual([
      [
        "/etc/containerd/conf.d/vnode-agent.toml",
        '# BEGIN vnode-agent (managed, do not edit)\nversion = 3\n\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.vnode]\n  runtime_type = "io.containerd.vnode.v2"\n# END vnode-agent\n',
      ],
      [
        CFG,
        "\uFEFFversion = 3\n# BEGIN vnode-agent imports (managed, do not edit)\nimports = [\"/etc/containerd/conf.d/vnode-agent.toml\"]\n# END vnode-agent imports\n\n[grpc]\n  address = '/run/x.sock'\n",
      ],
    ]);
  });

  it("version 2: the block is appended, the BOM stays first (as for version 3)", async () => {
    const text = "\uFEFFversion = 2\n";
    const changes = await plan({ [CFG]: text });
    expect(changes).toHaveLength(1);
    expect(changes[0].after!.startsWith("\uFEFFversion = 2\n\n# BEGIN vnode-agent")).toBe(true);
  });
});

describe("6. a disabled CRI plugin", () => {
  it.each([
    [
      'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n',
      '"io.containerd.grpc.v1.cri"',
    ],
    [
      'version = 3\ndisabled_plugins = ["io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri"]\n',
      '"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"',
    ],
  ])("the plan refuses %j", async (text, ids) => {
    const err = await plan({ [CFG]: text }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `${CFG} disables the CRI plugin (disabled_plugins contains ${ids}), so containerd serves the kubelet no runtime and the "vnode" handler could never be used; remove ${ids.includes(",") ? "them" : "it"} from disabled_plugins (Docker's packaged config disables CRI), then rerun.`,
    );
  });

  it("install refuses with exit 2 even with every preflight check skipped, and writes nothing", async () => {
    put(CFG, 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n');
    await expect(install(options(payload), log)).rejects.toMatchObject({ exitCode: 2 });
    expect(listFiles(root)).toEqual(["etc/containerd/config.toml"]);
  });

  it('a version 2 "cri" short id disables nothing (containerd 1.x matches full ids in version 2)', async () => {
    expect(await plan({ [CFG]: 'version = 2\ndisabled_plugins = ["cri"]\n' })).toHaveLength(1);
  });
});

describe("9. a version 2 file with containerd 2.x plugin ids", () => {
  const V2X =
    "version = 2\n\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'runc'\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n";

  it("only 2.x ids: the handler goes under io.containerd.cri.v1.runtime (containerd 2.x migrates nothing)", async () => {
    const changes = await plan({ [CFG]: V2X });
    expect(changes.map((c) => c.after)).toEqual([
      V2X +
        "\n" +
        renderBlock(
          RUNTIME_BLOCK,
          '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.vnode]\n  runtime_type = "io.containerd.vnode.v2"\n',
        ),
    ]);
  });

  it("both 1.x and 2.x ids: refused, since where the handler survives depends on the 2.x release", async () => {
    const text = V2X + "[plugins.'io.containerd.grpc.v1.cri']\n  sandbox_image = 'pause:3.9'\n";
    await expect(plan({ [CFG]: text })).rejects.toThrow(
      `${CFG} is a version 2 config but defines both plugins."io.containerd.grpc.v1.cri" (containerd 1.x) and plugins."io.containerd.cri.v1.runtime" (containerd 2.x)`,
    );
  });
});

const canMount = (() => {
  if (process.getuid?.() !== 0) return "needs root for a read-only bind mount";
  return undefined;
})();

(canMount ? describe.skip : describe)("7. a read-only config dir", () => {
  let mounted: string | null = null;
  const readOnly = (p: string) => {
    execFileSync("mount", ["--bind", at(p), at(p)]);
    mounted = at(p);
    execFileSync("mount", ["-o", "remount,bind,ro", at(p)]);
  };
  afterEach(() => {
    if (mounted !== null) execFileSync("umount", [mounted]);
    mounted = null;
  });

  it("install fails before writing anything, naming the dir and the cause", async () => {
    put(CFG, "version = 3\n");
    readOnly("/etc/containerd");
    await expect(install(options(payload), log)).rejects.toThrow(
      `cannot write /etc/containerd/conf.d/vnode-agent.toml: /etc/containerd is on a read-only filesystem in the agent's view of the host (--host-root ${root}); mount it read-write into the agent (the DaemonSet's hostPath volumes), then rerun. Nothing was changed.`,
    );
    expect(fs.existsSync(at(STATE))).toBe(false);
  });

  it("uninstall clears a ledger an older agent left there (no EROFS rmdir of a dir never made)", async () => {
    put(CFG, "version = 3\n");
    const meta = {
      agentVersion: "1",
      handler: { name: "vnode", runtimeType: "io.containerd.vnode.v2" },
      isolationMode: "per-namespace" as const,
      containerd: { configPath: CFG, configVersion: 3, version: null },
    };
    const ledger = addFileIntent(newLedger(meta), {
      path: "/etc/containerd/conf.d/vnode-agent.toml",
      current: null,
      next: "x",
      createdDirs: ["/etc/containerd/conf.d"],
    });
    await saveLedger({ hostRoot: root, stateDir: STATE }, ledger);
    readOnly("/etc/containerd");
    await uninstall(options(), log);
    expect(fs.existsSync(at(STATE))).toBe(false);
  });
});

describe("8. a SIGKILL while a backup was being written", () => {
  /** What the kill leaves: fsAtomic's temp copy of the config in the backup dir, no ledger. */
  const leftover = `${STATE}/backup/etc/containerd/.config.toml.0123456789ab.tmp`;

  it("uninstall right after the kill removes the temp copy and the state dir", async () => {
    put(CFG, KUBEADM);
    put(leftover, KUBEADM);
    fs.chmodSync(at(leftover), 0o600);
    const r = await uninstall(options(), log);
    expect(r.installed).toBe(false);
    expect(fs.existsSync(at(STATE))).toBe(false);
  });

  it("install then uninstall leaves no state dir", async () => {
    put(CFG, KUBEADM);
    put(leftover, KUBEADM);
    await install(options(payload), log);
    expect(listFiles(at(STATE))).toEqual(["backup/etc/containerd/config.toml", "ledger.json"]);
    await uninstall(options(payload), log);
    expect(fs.existsSync(at(STATE))).toBe(false);
    expect(fs.readFileSync(at(CFG))).toEqual(KUBEADM);
  });
});
