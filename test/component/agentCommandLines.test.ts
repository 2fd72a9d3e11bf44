/**
 * Every agent command line the component renders, parsed by the agent's own commander program
 * (agent/src/cli/main.ts, actions swapped for a recorder): each containerd distribution and
 * restart strategy, each pool and isolation mode, and the webhook Deployment. The expected
 * options are literals, so a flag renamed on one side only (the agent's parser or the
 * component's writer), a default that drifts, or a value the agent reads differently fails here
 * rather than on every node at deploy time (the kubelet starts the container with exactly
 * `command` + `args`; the agent rejects an unknown flag and exits 2, so the pod crash-loops).
 */
import {
  ContainerdDistribution,
  EnforcementMode,
  IsolationMode,
  RestartStrategy,
  VNodeRuntime,
  type VNodeRuntimeArgs,
} from "../../components/index";
import { modeFromEnv } from "../../agent/src/lib/isolationMode";
import { parseAgentArgv } from "../support/agentCli";
import { Recorder, type Registered, settle } from "./harness";

const recorder = new Recorder();
const IMAGE = { ref: "ghcr.io/acme/vnode-agent:0.1.0" };

interface Workload {
  metadata: { name: string };
  spec: { template: { spec: { containers: Container[] } } };
}
interface Container {
  command: string[];
  args: string[];
  env: { name: string; value?: string }[];
}
const workload = (r: Registered): Workload => r.inputs as unknown as Workload;
const containerOf = (r: Registered): Container => workload(r).spec.template.spec.containers[0];

/** The agent's options for `run` when the component sets only what it sets; the rest defaults. */
const runOptions = (over: Record<string, unknown>): Record<string, unknown> => ({
  hostRoot: "/host",
  containerdDistribution: "containerd",
  handler: "vnode",
  runtimeType: "io.containerd.vnode.v2",
  installDir: "/opt/vnode/bin",
  cniConfDir: "/etc/vnode/cni/net.d",
  stateDir: "/var/lib/vnode-agent",
  restart: "systemd",
  verify: "cri",
  minContainerd: "1.7",
  listen: { host: undefined, port: 8090 },
  interval: 30_000,
  managerSocket: "/run/vnode/manager.sock",
  managerContainer: "vnode-manager",
  forceUninstall: false,
  maxRestarts: 3,
  restartWindow: 600_000,
  uninstallPodWait: 30_000,
  ...over,
});

async function render(name: string, args: Partial<VNodeRuntimeArgs>): Promise<void> {
  const runtime = new VNodeRuntime(name, { agentImage: IMAGE, ...args });
  await settle(recorder, runtime);
}

/** Each DaemonSet of a component: its Pulumi name, the agent's parsed `run`, and its mode. */
async function agents(
  name: string,
): Promise<{ name: string; command: string[]; parsed: unknown; mode: string }[]> {
  const daemonSets = recorder
    .byType(name, "kubernetes:apps/v1:DaemonSet")
    .sort((a, b) => a.name.localeCompare(b.name));
  return Promise.all(
    daemonSets.map(async (ds) => {
      const c = containerOf(ds);
      const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
      return {
        name: workload(ds).metadata.name,
        command: c.command,
        parsed: await parseAgentArgv(c.args),
        // The mode reaches the agent (and vNode's manager) as VNODE_PER_POD, read by the agent.
        mode: modeFromEnv(env),
      };
    }),
  );
}

beforeAll(() => recorder.install());

const DISTRIBUTIONS = Object.values(ContainerdDistribution);
const RESTARTS = Object.values(RestartStrategy);
const combos = DISTRIBUTIONS.flatMap((d) => RESTARTS.map((r) => [d, r] as const));

test("every distribution and restart strategy is a combination the test covers", () => {
  expect([DISTRIBUTIONS, RESTARTS]).toEqual([
    ["containerd", "k3s", "rke2", "microk8s", "k0s"],
    ["systemd", "kill", "none"],
  ]);
});

describe.each(combos)("distribution %s, restart %s", (distribution, restart) => {
  const name = `cl-${distribution}-${restart}`;
  beforeAll(() => render(name, { containerdDistribution: distribution, restartStrategy: restart }));

  test("the agent parses the DaemonSet's command line into these options", async () => {
    expect(await agents(name)).toStrictEqual([
      {
        name: `${name}-agent`,
        command: ["vnode-agent"],
        parsed: {
          command: "run",
          options: runOptions({
            containerdDistribution: distribution,
            restart,
            runtimeClasses: ["vnode"],
            daemonset: `${name}-agent`,
          }),
        },
        mode: "per-namespace",
      },
    ]);
  });
});

describe("two pools of different modes, a custom handler", () => {
  beforeAll(() =>
    render("cl-pools", {
      handler: "sandbox",
      isolationMode: IsolationMode.PerPod,
      pools: [
        { name: "builds", nodeSelector: { pool: "builds" } },
        {
          name: "services",
          isolationMode: IsolationMode.PerNamespace,
          nodeSelector: { pool: "services" },
        },
      ],
    }),
  );

  test("each pool's agent gets its DaemonSet, both classes, and its mode", async () => {
    const both = ["vnode", "vnode-per-pod"];
    expect(await agents("cl-pools")).toStrictEqual([
      {
        name: "cl-pools-agent-builds",
        command: ["vnode-agent"],
        parsed: {
          command: "run",
          options: runOptions({
            handler: "sandbox",
            runtimeClasses: both,
            daemonset: "cl-pools-agent-builds",
          }),
        },
        mode: "per-pod",
      },
      {
        name: "cl-pools-agent-services",
        command: ["vnode-agent"],
        parsed: {
          command: "run",
          options: runOptions({
            handler: "sandbox",
            runtimeClasses: both,
            daemonset: "cl-pools-agent-services",
          }),
        },
        mode: "per-namespace",
      },
    ]);
  });
});

describe.each([
  [
    "two modes, cert-manager installed",
    {
      isolationMode: IsolationMode.PerPod,
      pools: [
        { name: "a", nodeSelector: { pool: "a" } },
        { name: "b", isolationMode: IsolationMode.PerNamespace, nodeSelector: { pool: "b" } },
      ],
      certManager: { install: true },
    },
    {
      class: { "per-namespace": "vnode", "per-pod": "vnode-per-pod" },
      defaultMode: "per-pod",
      excludeNamespace: ["cert-manager", "vnode-runtime"],
    },
  ],
  [
    "one per-namespace pool, own namespace and class name",
    { namespace: "sandbox", runtimeClassName: "vn" },
    {
      class: { "per-namespace": "vn" },
      defaultMode: "per-namespace",
      excludeNamespace: ["sandbox"],
    },
  ],
] as const)("webhook: %s", (what, extra, expected) => {
  const name = `cl-webhook-${what.length}`;
  beforeAll(() =>
    render(name, {
      ...(extra as Partial<VNodeRuntimeArgs>),
      enforcement: {
        namespaceSelector: { matchLabels: { tenant: "true" } },
        mode: EnforcementMode.MutateAndValidate,
      },
    }),
  );

  test("the agent parses the Deployment's command line into these options", async () => {
    const c = containerOf(recorder.one(name, "kubernetes:apps/v1:Deployment"));
    expect(c.command).toEqual(["vnode-agent"]);
    expect(await parseAgentArgv(c.args)).toStrictEqual({
      command: "webhook",
      options: {
        listen: { host: undefined, port: 8443 },
        tlsCertFile: "/etc/vnode-webhook/tls/tls.crt",
        tlsKeyFile: "/etc/vnode-webhook/tls/tls.key",
        certReloadInterval: 5000,
        maxRequestBytes: 3 * 1024 * 1024,
        shutdownDelay: 5000,
        // The namespace label guard is on by default (namespaceGuard.test.ts).
        tenantSelector: '{"matchLabels":{"tenant":"true"}}',
        platformGroup: [],
        ...expected,
      },
    });
  });
});
