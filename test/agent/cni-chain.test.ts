/**
 * CNI chaining for the vNode handler only, against a real containerd 1.6 (the CLI bundle with a
 * stand-in multi-call payload, see test/support/agentHost.ts): a pod sandbox on handler `vnode`
 * runs the stand-in `vnode-cni` after the host's CNI plugin, a sandbox on `runc` never runs it,
 * the chain follows the host's network config when it is rewritten, and uninstall leaves the
 * host's CNI files as they were.
 *
 * The host's network is a stand-in too (`host-net`, and `loopback`, which containerd adds to
 * every pod): real bridge/IPAM plugins would need a network this sandbox does not have. What the
 * stand-ins cannot show, and what this relies on:
 * - the real `vnode-cni` moves the pod's network namespace into the vNode user namespace and
 *   calls the vNode CNI; it needs the real manager (vNode's architecture page). Here it only
 *   returns its prevResult, which is what a chained CNI plugin must do (CNI spec, "Chained
 *   plugins": the result of the last plugin is the result of the list).
 * - containerd loads the handler's conf dir through its own CNI plugin instance and watches it
 *   with fsnotify (containerd `pkg/cri/server/service.go` / `internal/cri/server`:
 *   `cniNetConfSyncer` per runtime with `cni_conf_dir`), so a rewritten chain needs no restart.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { removePodSandbox, runPodSandbox, stopPodSandbox } from "../../agent/src/cri/client";
import { agentHost, runAgentCli, STAND_IN_BINARY, standInCalls } from "../support/agentHost";
import {
  describeWithContainerd,
  startContainerd,
  type TestContainerd,
} from "../support/containerd";

const HOST_CONFLIST = `{
  "cniVersion": "0.4.0",
  "name": "hostnet",
  "plugins": [{ "type": "host-net" }]
}
`;

describeWithContainerd(
  "the vNode handler's CNI chain against a real containerd",
  () => {
    let ctrd: TestContainerd;
    let work: string;
    let host: ReturnType<typeof agentHost>;
    let hostConfDir: string;
    let uid = 0;

    beforeAll(async () => {
      ctrd = await startContainerd({ pauseImage: true });
      work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-cni-"));
      host = agentHost(ctrd, work);
      hostConfDir = path.join(ctrd.dir, "cni/net.d");
      // The host's CNI: its plugins in containerd's bin_dir, its network in conf_dir.
      for (const plugin of ["host-net", "host-tune", "loopback"]) {
        fs.symlinkSync(
          path.join(host.payload, STAND_IN_BINARY),
          path.join(ctrd.dir, "cni/bin", plugin),
        );
      }
      fs.writeFileSync(path.join(hostConfDir, "10-host.conflist"), HOST_CONFLIST);
      const r = await runAgentCli(["install", ...host.flags]);
      expect([r.code, r.stderr.match(/"level":"(error|fatal)".*/)?.[0]]).toEqual([0, undefined]);
    }, 180_000);

    afterAll(async () => {
      await ctrd?.cleanup();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    /** Runs and removes a sandbox with its own network namespace; returns its CNI ADD calls. */
    async function sandboxCniAdds(handler: string): Promise<string[]> {
      uid++;
      const id = await runPodSandbox(
        ctrd.socket,
        {
          metadata: { name: `net-${uid}`, uid: `net-uid-${uid}`, namespace: "default", attempt: 0 },
          logDirectory: path.join(work, "pods"),
          linux: { securityContext: { namespaceOptions: { network: "POD" } } },
        },
        handler,
        { timeoutMs: 60_000 },
      );
      await stopPodSandbox(ctrd.socket, id);
      await removePodSandbox(ctrd.socket, id);
      return standInCalls(host.record)
        .filter((c) => c.containerId === id && c.cniCommand === "ADD" && c.role !== "loopback")
        .map((c) => c.role);
    }

    it("gives the handler its own conf dir holding the host's network with vnode-cni appended", () => {
      expect(fs.readdirSync(host.cniConfDir)).toEqual(["10-vnode.conflist"]);
      expect(
        JSON.parse(fs.readFileSync(path.join(host.cniConfDir, "10-vnode.conflist"), "utf8")),
      ).toEqual({
        cniVersion: "0.4.0",
        // The host network's name: IPAM keeps one pool per network name.
        name: "hostnet",
        plugins: [{ type: "host-net" }, { type: "vnode-cni" }],
      });
      expect(fs.readlinkSync(path.join(ctrd.dir, "cni/bin/vnode-cni"))).toBe(
        path.join(host.installDir, STAND_IN_BINARY),
      );
    });

    it("a sandbox on handler vnode calls vnode-cni after the host's CNI plugin", async () => {
      expect(await sandboxCniAdds("vnode")).toEqual(["host-net", "vnode-cni"]);
    });

    it("a sandbox on runc never calls vnode-cni", async () => {
      expect(await sandboxCniAdds("runc")).toEqual(["host-net"]);
    });

    it("follows the host's network config when the host's CNI rewrites it, without a containerd restart", async () => {
      const pid = ctrd.pid;
      const rewritten = HOST_CONFLIST.replace(
        '[{ "type": "host-net" }]',
        '[{ "type": "host-net", "mtu": 1400 }, { "type": "host-tune" }]',
      );
      fs.writeFileSync(path.join(hostConfDir, "10-host.conflist"), rewritten);
      const planned = JSON.parse((await runAgentCli(["plan", ...host.flags, "--json"])).stdout);
      expect(
        planned.changes.map((c: { path: string; action: string }) => [c.path, c.action]),
      ).toEqual([[path.join(host.cniConfDir, "10-vnode.conflist"), "modify"]]);
      expect(planned.restart).toBe(false);
      expect((await runAgentCli(["install", ...host.flags])).code).toBe(0);
      expect(ctrd.pid).toBe(pid);
      // containerd reloads the handler's dir on the change: the new list runs.
      expect(await sandboxCniAdds("vnode")).toEqual(["host-net", "host-tune", "vnode-cni"]);
    });

    it("uninstall removes the chain and the links; the host's CNI files are untouched", async () => {
      const hostBytes = fs.readFileSync(path.join(hostConfDir, "10-host.conflist"), "utf8");
      expect((await runAgentCli(["uninstall", ...host.flags])).code).toBe(0);
      expect(fs.existsSync(path.join(host.cniConfDir, "10-vnode.conflist"))).toBe(false);
      expect(fs.readdirSync(path.join(ctrd.dir, "cni/bin")).sort()).toEqual([
        "host-net",
        "host-tune",
        "loopback",
      ]);
      expect(fs.readdirSync(hostConfDir)).toEqual(["10-host.conflist"]);
      expect(fs.readFileSync(path.join(hostConfDir, "10-host.conflist"), "utf8")).toBe(hostBytes);
      expect(fs.readFileSync(ctrd.configPath, "utf8")).toBe(ctrd.originalConfig);
    });
  },
  { pauseImage: true },
);
