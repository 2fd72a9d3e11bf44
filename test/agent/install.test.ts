/**
 * The `vnode-agent` CLI (the esbuild bundle `npm test` builds first) against a real containerd
 * 1.6: plan, install with a stand-in payload (the runc shim, registered under the `vnode`
 * handler through `runtime_path`, so a sandbox really runs from the installed file), verify,
 * idempotent rerun, concurrent installs, rollback when containerd is gone, uninstall.
 *
 * The host root is `/`: the harness's containerd keeps its config, socket and state in a temp
 * dir, and the agent's install and state dirs are in another, so nothing outside is touched.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  criStatus,
  podSandboxStatus,
  removePodSandbox,
  runPodSandbox,
  stopPodSandbox,
} from "../../agent/src/cri/client";
import { STAND_IN_BINARY, STAND_IN_SHIM, agentHost, runAgentCli } from "../support/agentHost";
import {
  describeWithContainerd,
  startContainerd,
  type TestContainerd,
} from "../support/containerd";

describeWithContainerd(
  "vnode-agent install/uninstall against a real containerd",
  () => {
    let ctrd: TestContainerd;
    let work: string;
    let payload: string;
    let installDir: string;
    let stateDir: string;
    let cniConfDir: string;
    let flags: string[];

    beforeAll(async () => {
      ctrd = await startContainerd({ pauseImage: true });
      work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-install-"));
      ({ payload, installDir, stateDir, cniConfDir, flags } = agentHost(ctrd, work));
    }, 180_000);

    afterAll(async () => {
      await ctrd?.cleanup();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    const config = () => fs.readFileSync(ctrd.configPath, "utf8");

    it("plans without touching anything", async () => {
      const r = await runAgentCli(["plan", ...flags, "--json"]);
      expect(r.code).toBe(0);
      const p = JSON.parse(r.stdout);
      expect(p.configVersion).toBe(2);
      expect(p.restart).toBe(true);
      expect(p.changes.map((c: { path: string; action: string }) => [c.path, c.action])).toEqual([
        [ctrd.configPath, "modify"],
      ]);
      // The multi-call binary once, and each role name as a link to it, found by role.
      expect(p.artifacts).toEqual([
        expect.objectContaining({
          target: path.join(installDir, STAND_IN_BINARY),
          action: "create",
        }),
      ]);
      const binary = path.join(installDir, STAND_IN_BINARY);
      expect(p.links).toEqual([
        {
          path: path.join(installDir, "containerd-shim-vnode-v2"),
          target: binary,
          action: "create",
        },
        { path: path.join(installDir, "vnode-cni"), target: binary, action: "create" },
        { path: path.join(ctrd.dir, "cni/bin/vnode-cni"), target: binary, action: "create" },
        { path: path.join(installDir, "vnode-manager"), target: binary, action: "create" },
      ]);
      expect(config()).toBe(ctrd.originalConfig);
      expect(fs.existsSync(installDir)).toBe(false);
      expect(fs.existsSync(stateDir)).toBe(false);
    });

    it("installs, restarts containerd once and the CRI reports the handler", async () => {
      const pidBefore = ctrd.pid;
      const r = await runAgentCli(["install", ...flags]);
      expect(r.stderr).not.toMatch(/"level":"error"/);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(
        "installed handler vnode: 6 change(s), containerd restarted, CRI handlers: runc, vnode\n",
      );
      expect(ctrd.pid).not.toBe(pidBefore);
      expect(config()).toBe(
        ctrd.originalConfig +
          "\n# BEGIN vnode-agent (managed, do not edit)\n" +
          '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode]\n' +
          '  runtime_type = "io.containerd.runc.v2"\n' +
          `  runtime_path = "${path.join(installDir, STAND_IN_SHIM)}"\n` +
          `  cni_conf_dir = "${cniConfDir}"\n` +
          "  cni_max_conf_num = 1\n" +
          "# END vnode-agent\n",
      );
      const installed = fs.readFileSync(path.join(installDir, STAND_IN_BINARY));
      expect(installed.equals(fs.readFileSync(path.join(payload, STAND_IN_BINARY)))).toBe(true);
      expect(fs.readlinkSync(path.join(installDir, STAND_IN_SHIM))).toBe(
        path.join(installDir, STAND_IN_BINARY),
      );
      expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc", "vnode"]);
      const ledger = JSON.parse(fs.readFileSync(path.join(stateDir, "ledger.json"), "utf8"));
      expect(ledger.files.map((f: { path: string; kind: string }) => [f.path, f.kind])).toEqual([
        [ctrd.configPath, "modified"],
      ]);
      expect(ledger.artifacts.map((a: { path: string }) => a.path)).toEqual([
        path.join(installDir, STAND_IN_BINARY),
      ]);
      expect(ledger.links.map((l: { path: string; state: string }) => [l.path, l.state])).toEqual([
        [path.join(installDir, "containerd-shim-vnode-v2"), "done"],
        [path.join(installDir, "vnode-cni"), "done"],
        [path.join(ctrd.dir, "cni/bin/vnode-cni"), "done"],
        [path.join(installDir, "vnode-manager"), "done"],
      ]);
    });

    it("runs a pod sandbox on the vnode handler from the installed shim", async () => {
      const id = await runPodSandbox(
        ctrd.socket,
        {
          metadata: {
            name: "vnode-probe",
            uid: "vnode-probe-uid",
            namespace: "default",
            attempt: 0,
          },
          logDirectory: path.join(work, "pods"),
          linux: { securityContext: { namespaceOptions: { network: "NODE" } } },
        },
        "vnode",
        { timeoutMs: 60_000 },
      );
      try {
        expect((await podSandboxStatus(ctrd.socket, id)).state).toBe("SANDBOX_READY");
      } finally {
        await stopPodSandbox(ctrd.socket, id);
        await removePodSandbox(ctrd.socket, id);
      }
    });

    it("a second install with the same inputs changes nothing and restarts nothing", async () => {
      const pidBefore = ctrd.pid;
      const bytes = config();
      const r = await runAgentCli(["install", ...flags]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(
        "installed handler vnode: 0 change(s), containerd not restarted, CRI handlers: runc, vnode\n",
      );
      expect(ctrd.pid).toBe(pidBefore);
      expect(config()).toBe(bytes);
    });

    it("status reports the ledger, the config and the live handler", async () => {
      const r = await runAgentCli(["status", ...flags]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(
        "ledger: installed by agent 0.1.0 (per-namespace), 1 file(s), 1 artifact(s)\n" +
          "config: handler vnode registered\n" +
          "cri: handler vnode live\n",
      );
    });

    it("uninstalls: config byte-identical, handler gone, payload and ledger removed; twice is harmless", async () => {
      const r = await runAgentCli(["uninstall", ...flags]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("uninstalled: config restored, containerd restarted\n");
      expect(config()).toBe(ctrd.originalConfig);
      expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc"]);
      // Exactly what install made: the binary and every role link, the CNI bin dir's too.
      for (const name of [STAND_IN_BINARY, STAND_IN_SHIM, "vnode-cni", "vnode-manager"]) {
        expect([name, fs.existsSync(path.join(installDir, name))]).toEqual([name, false]);
      }
      expect(fs.readdirSync(path.join(ctrd.dir, "cni/bin"))).toEqual([]);
      expect(fs.existsSync(path.join(stateDir, "ledger.json"))).toBe(false);

      const again = await runAgentCli(["uninstall", ...flags]);
      expect(again.code).toBe(0);
      expect(again.stdout).toBe("nothing to uninstall\n");
      expect(config()).toBe(ctrd.originalConfig);
    });

    it("two concurrent installs serialise on the host lock and give one result", async () => {
      const [a, b] = await Promise.all([
        runAgentCli(["install", ...flags]),
        runAgentCli(["install", ...flags]),
      ]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const outs = [a.stdout, b.stdout].sort();
      expect(outs).toEqual([
        "installed handler vnode: 0 change(s), containerd not restarted, CRI handlers: runc, vnode\n",
        "installed handler vnode: 6 change(s), containerd restarted, CRI handlers: runc, vnode\n",
      ]);
      expect(config().split("# BEGIN vnode-agent").length).toBe(2);
      expect((await runAgentCli(["uninstall", ...flags])).code).toBe(0);
      expect(config()).toBe(ctrd.originalConfig);
    });

    it("rolls back and exits 4 when containerd does not come back", async () => {
      await ctrd.stop();
      try {
        const noRestart = flags.map((f) => (f === ctrd.restartScript ? "true" : f));
        const r = await runAgentCli([...["install", ...noRestart], "--skip-preflight", "all"]);
        expect(r.code).toBe(4);
        expect(r.stderr).toMatch(
          /^vnode-agent: containerd restart failed: containerd did not come back after the restart command "true": containerd did not answer on .* within 10000 ms \(\d+ call\(s\)\); .*; rolled back \(containerd is still not answering: .*\)\.$/m,
        );
        expect(config()).toBe(ctrd.originalConfig);
        expect(fs.existsSync(path.join(installDir, STAND_IN_SHIM))).toBe(false);
        expect(fs.existsSync(path.join(stateDir, "ledger.json"))).toBe(false);
      } finally {
        await ctrd.start();
      }
    });

    it("refuses bad input with exit 2 and one sentence naming the flag", async () => {
      const r = await runAgentCli(["install", ...flags, "--handler", "Bad_Name"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^vnode-agent: --handler must be .*; got "Bad_Name"\.$/m);
      expect(config()).toBe(ctrd.originalConfig);
    });
  },
  { pauseImage: true },
);
