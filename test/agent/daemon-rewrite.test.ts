/**
 * `vnode-agent run` (the esbuild bundle) while another tool rewrites containerd's config (issue
 * 12, case 1, for the daemon): nvidia-ctk, the GPU operator's toolkit and `containerd config
 * migrate` parse the file and write it back with go-toml, which drops comments, so the agent's
 * BEGIN/END markers, and keeps the tables, so the agent's `vnode` runtime table. The daemon's
 * drift repair must do what install does with the ledger's record:
 * - the table as recorded: re-adopt it into the block, without restarting containerd (the
 *   effective config is the same) and without taking the node's ready label away;
 * - a table another tool also changed: refuse loudly (`failed`, a Warning naming the file), touch
 *   nothing, keep the shim and the ledger; once the table is as recorded again, re-adopt it.
 *
 * The rewrite is played by smol-toml's parse + stringify (comments go, tables stay), while the
 * daemon runs. Real containerd 1.6 (private, harness), FAKE Kubernetes API server.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { parse, stringify } from "smol-toml";
import { RUNTIME_LABEL } from "vnode-contract";
import { criStatus } from "../../agent/src/cri/client";
import { STAND_IN_SHIM, agentHost } from "../support/agentHost";
import {
  describeWithContainerd,
  startContainerd,
  type TestContainerd,
} from "../support/containerd";
import { FakeKubeApi } from "../support/fakeKubeApi";

const CLI = path.resolve(__dirname, "../../agent/dist/vnode-agent.js");
const NODE = "rewrite-node";
const NAMESPACE = "vnode-system";
const DAEMONSET = "vnode-agent";
const TOKEN = "rewrite-test-token";
const OS_LABEL = { "kubernetes.io/os": "linux" };
const CRI = "io.containerd.grpc.v1.cri";

type Doc = {
  plugins: Record<string, { containerd: { runtimes: Record<string, Record<string, unknown>> } }>;
};

async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  describe: () => string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeWithContainerd("vnode-agent run while another tool rewrites containerd's config", () => {
  let ctrd: TestContainerd;
  let api: FakeKubeApi;
  let work: string;
  let installDir: string;
  let stateDir: string;
  let agent: ChildProcess | undefined;
  let exited: Promise<number | null>;
  const stderr: string[] = [];
  let url = "";

  beforeAll(async () => {
    ctrd = await startContainerd();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-rewrite-"));
    const host = agentHost(ctrd, work);
    ({ installDir, stateDir } = host);
    const tokenFile = path.join(work, "token");
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);
    api = await FakeKubeApi.start({ token: TOKEN });
    api.addNode(NODE, { ...OS_LABEL });
    api.addDaemonSet(NAMESPACE, DAEMONSET, { ...OS_LABEL });
    agent = spawn(
      process.execPath,
      [
        CLI,
        "run",
        ...host.flags,
        ...["--listen", "127.0.0.1:0", "--interval", "1s"],
        ...["--daemonset", DAEMONSET, "--kube-api-server", api.url, "--kube-token-file", tokenFile],
      ],
      {
        env: {
          PATH: process.env.PATH,
          NODE_NAME: NODE,
          POD_NAMESPACE: NAMESPACE,
          VNODE_PER_POD: "false",
        },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    exited = new Promise((resolve) => agent!.once("exit", (code) => resolve(code)));
    readline.createInterface({ input: agent.stderr! }).on("line", (line) => {
      stderr.push(line);
      if (!url && line.includes('"phase":"http"')) url = String(JSON.parse(line).url);
    });
  }, 120_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) agent.kill("SIGKILL");
    if (agent) await exited;
    await api?.close();
    await ctrd?.cleanup();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const log = () => stderr.slice(-20).join("\n");
  const config = () => fs.readFileSync(ctrd.configPath, "utf8");
  const eventOf = (reason: string) => api.events.find((e) => e.reason === reason);
  const label = () =>
    (api.nodes.get(NODE)!.metadata.labels as Record<string, string>)[RUNTIME_LABEL];
  const readyz = async () => (await fetch(`${url}/readyz`)).status;
  /** What go-toml does to the file: comments (the markers) dropped, tables kept. */
  const rewrite = (change: (doc: Doc) => void = () => {}) => {
    const doc = parse(config()) as unknown as Doc;
    change(doc);
    fs.writeFileSync(ctrd.configPath, stringify(doc) + "\n");
  };
  const vnodeTables = (text: string) =>
    text.split(`[plugins."${CRI}".containerd.runtimes.vnode]`).length - 1;
  const reset = () => {
    api.requests.length = 0;
    api.events.length = 0;
  };

  it("installs and gets ready", async () => {
    await waitFor("/readyz 200", async () => url !== "" && (await readyz()) === 200, log, 60_000);
    expect(config()).toContain("# BEGIN vnode-agent");
    expect(label()).toBe("ready");
  });

  it("re-adopts its table after a rewrite that dropped the markers: no restart, ready label kept", async () => {
    reset();
    const pid = ctrd.pid;
    rewrite();
    expect(config()).not.toContain("# BEGIN vnode-agent");
    const repaired = await waitFor("DriftRepaired", () => eventOf("DriftRepaired"), log);
    expect(repaired.message).toMatch(
      new RegExp(
        `^another tool rewrote ${ctrd.configPath.replace(/[.]/g, "\\.")} without the vnode-agent block, keeping runtime "vnode" as the agent recorded it; re-adopting it \\(.*\\)\\. Repaired in \\d+\\.\\d s\\.$`,
      ),
    );
    expect(api.events.map((e) => [e.type, e.reason])).toEqual([
      ["Warning", "DriftDetected"],
      ["Normal", "DriftRepaired"],
    ]);
    const text = config();
    expect(vnodeTables(text)).toBe(1);
    expect(text).toMatch(/# BEGIN vnode-agent[^]*runtimes\.vnode\][^]*# END vnode-agent\n$/);
    expect(ctrd.pid).toBe(pid);
    expect(api.requestsFor("PATCH")).toEqual([]);
    expect(label()).toBe("ready");
    expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc", "vnode"]);
    expect(await readyz()).toBe(200);
  });

  it("refuses loudly when the tool also changed the table: failed, config, shim and ledger untouched", async () => {
    reset();
    const pid = ctrd.pid;
    rewrite((doc) => {
      doc.plugins[CRI].containerd.runtimes.vnode.privileged_without_host_devices = true;
    });
    const written = config();
    const refused = await waitFor("DriftNotRepaired", () => eventOf("DriftNotRepaired"), log);
    expect([refused.type, refused.message]).toEqual([
      "Warning",
      `containerd's config cannot take runtime handler "vnode": ${ctrd.configPath} defines runtime "vnode" under plugins."${CRI}".containerd.runtimes outside a vnode-agent block and not as vnode-agent recorded it (another tool rewrote the config and changed the table); vnode-agent leaves it alone: remove the table or restore it as recorded, and the handler is registered again. Not repairing: the agent leaves containerd's config, the shim and its ledger as they are until the config is fixed.`,
    ]);
    await waitFor("the failed label", () => label() === "failed", log);
    expect(await readyz()).toBe(503);
    // Three more passes: nothing touched, the Warning not repeated.
    await new Promise((r) => setTimeout(r, 3500));
    expect(config()).toBe(written);
    expect(fs.existsSync(path.join(installDir, STAND_IN_SHIM))).toBe(true);
    expect(fs.existsSync(path.join(stateDir, "ledger.json"))).toBe(true);
    expect(ctrd.pid).toBe(pid);
    expect(api.events.map((e) => e.reason)).toEqual(["DriftNotRepaired"]);
  });

  it("re-adopts the table once it is as recorded again, and gets ready", async () => {
    reset();
    rewrite((doc) => {
      delete doc.plugins[CRI].containerd.runtimes.vnode.privileged_without_host_devices;
    });
    await waitFor("/readyz 200", async () => (await readyz()) === 200, log);
    expect(label()).toBe("ready");
    expect(vnodeTables(config())).toBe(1);
    expect(config()).toContain("# BEGIN vnode-agent");
  });

  it("SIGTERM while the DaemonSet still selects the node keeps the runtime", async () => {
    agent!.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(config()).toContain("# BEGIN vnode-agent");
  });
});
