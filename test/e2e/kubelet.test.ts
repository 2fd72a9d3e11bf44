/**
 * The node e2e's kubelet translation (test/support/kubelet.ts) on the template the stack renders:
 * what each container of the agent's pod runs with, exactly, and the refusal of any pod field the
 * translation does not know. Pure and quick, so it is part of `npm test`: a component change
 * that adds a pod field fails here first, naming the field.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Manifest, runProgram } from "../../scripts/render";
import { REPO_ROOT } from "../support/images";
import { type NodeContext, UnsupportedPodField, translatePod } from "../support/kubelet";

type Obj = Record<string, unknown>;

let manifests: Manifest[];
let dir: string;

beforeAll(async () => {
  manifests = await runProgram(
    REPO_ROOT,
    "vnode-runtime",
    "kubelet",
    { "vnode-runtime:agentImage": "registry.example.com/vnode-agent:1" },
    [],
  );
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-kubelet-"));
  // The two `Directory` hostPaths of the default stack exist on a node with containerd and D-Bus.
  for (const d of ["run/containerd", "run/dbus"])
    fs.mkdirSync(path.join(dir, "host", d), { recursive: true });
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A deep copy of the rendered pod spec, to change in a test. */
function podSpec(): Obj {
  const ds = manifests.find((m) => m.kind === "DaemonSet") as unknown as {
    spec: { template: { spec: Obj } };
  };
  return structuredClone(ds.spec.template.spec);
}

function node(): NodeContext {
  return {
    hostRoot: path.join(dir, "host"),
    nodeName: "n1",
    namespace: "vnode-runtime",
    serviceAccountDir: "/sa",
    apiHost: "10.0.0.1",
    apiPort: 6443,
    podDir: path.join(dir, "pod"),
    name: "p1",
  };
}

const ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
const KUBELET_ENV = [
  "--env",
  "KUBERNETES_SERVICE_HOST=10.0.0.1",
  "--env",
  "KUBERNETES_SERVICE_PORT=6443",
];
const SERVICE_ACCOUNT = [
  "--volume",
  "/sa:/var/run/secrets/kubernetes.io/serviceaccount:ro,rprivate",
];

test("the sandbox: the pod's network, IPC and UTS shared; the grace period from the template", () => {
  const pod = translatePod(podSpec(), node());
  expect(pod.createArgs).toEqual([
    ...["pod", "create", "--name", "p1", "--network", "host", "--share", "ipc,net,uts"],
    ...["--infra-image", "localhost/vnode-test/pause:1"],
  ]);
  expect(pod.terminationGracePeriodSeconds).toBe(120);
  expect(pod.containers.map((c) => [c.name, c.podmanName])).toEqual([
    ["agent", "p1-agent"],
    ["vnode-manager", "p1-vnode-manager"],
  ]);
});

test("the agent: no capability, no privilege escalation, read-only root, the pod's RuntimeDefault seccomp, its hostPaths", () => {
  const h = path.join(dir, "host");
  const [agent] = translatePod(podSpec(), node()).containers;
  expect(agent.runArgs).toEqual([
    ...["run", "--detach", "--name", "p1-agent", "--pod", "p1", ...ULIMITS],
    // RuntimeDefault: podman's default profile, so no seccomp flag.
    ...["--user", "0:0", "--security-opt", "no-new-privileges", "--cap-drop", "ALL"],
    ...["--read-only", "--read-only-tmpfs=false"],
    ...["--volume", `${h}/etc/containerd:/host/etc/containerd:rw,rprivate`],
    ...["--volume", `${h}/run/containerd:/host/run/containerd:ro,rprivate`],
    ...["--volume", `${h}/opt/vnode/bin:/host/opt/vnode/bin:rw,rprivate`],
    ...["--volume", `${h}/etc/cni/net.d:/host/etc/cni/net.d:ro,rprivate`],
    ...["--volume", `${h}/etc/vnode/cni/net.d:/host/etc/vnode/cni/net.d:rw,rprivate`],
    ...["--volume", `${h}/opt/cni/bin:/host/opt/cni/bin:rw,rprivate`],
    ...["--volume", `${h}/var/lib/vnode-agent:/host/var/lib/vnode-agent:rw,rprivate`],
    ...["--volume", `${h}/run/dbus:/host/run/dbus:ro,rprivate`],
    ...["--volume", `${path.join(dir, "pod")}/empty-dir/tmp:/tmp:rw,rprivate`],
    // The token only in the agent: the pod opts out of automount and mounts the API-access volume.
    ...SERVICE_ACCOUNT,
    ...["--volume", `${h}/run/vnode:/host/run/vnode:ro,rprivate`],
    ...["--env", "NODE_NAME=n1", "--env", "POD_NAMESPACE=vnode-runtime", "--env", "POD_NAME=p1"],
    ...["--env", "VNODE_PER_POD=false", ...KUBELET_ENV],
    ...[
      "--memory",
      "256m",
      "--entrypoint",
      '["vnode-agent"]',
      "registry.example.com/vnode-agent:1",
    ],
    ...["run", "--host-root", "/host", "--containerd-distribution", "containerd"],
    ...["--handler", "vnode", "--restart", "systemd", "--listen", ":8090"],
    ...["--runtime-classes", "vnode", "--daemonset", "vnode-agent"],
    ...["--manager-socket", "/run/vnode/manager.sock", "--manager-container", "vnode-manager"],
  ]);
  expect([agent.readinessProbe, agent.livenessProbe]).toEqual([
    {
      path: "/readyz",
      port: 8090,
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 3,
      initialDelaySeconds: 0,
    },
    {
      path: "/healthz",
      port: 8090,
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 3,
      initialDelaySeconds: 10,
    },
  ]);
});

test("the manager: privileged with its own Unconfined seccomp over the pod's, only its socket dir, the payload's manager role", () => {
  const [, manager] = translatePod(podSpec(), node()).containers;
  expect(manager.runArgs).toEqual([
    ...["run", "--detach", "--name", "p1-vnode-manager", "--pod", "p1", ...ULIMITS],
    ...["--security-opt", "seccomp=unconfined", "--privileged", "--user", "0:0"],
    // No service account token: the manager does not call the Kubernetes API.
    ...["--volume", `${path.join(dir, "host")}/run/vnode:/run/vnode:rw,rprivate`],
    ...["--env", "NODE_NAME=n1", "--env", "VNODE_PER_POD=false", ...KUBELET_ENV],
    ...["--entrypoint", '["/opt/vnode-payload/vnode-manager"]'],
    "registry.example.com/vnode-agent:1",
  ]);
  expect([manager.readinessProbe, manager.livenessProbe]).toEqual([undefined, undefined]);
});

test("DirectoryOrCreate hostPaths are made on the node, once", () => {
  expect(translatePod(podSpec(), node()).created).toEqual([
    "/etc/containerd",
    "/opt/vnode/bin",
    "/etc/cni/net.d",
    "/etc/vnode/cni/net.d",
    "/opt/cni/bin",
    "/var/lib/vnode-agent",
    "/run/vnode",
  ]);
  expect(translatePod(podSpec(), node()).created).toEqual([]);
});

test("a missing Directory hostPath fails the pod, as kubelet does", () => {
  fs.rmSync(path.join(dir, "host", "run/dbus"), { recursive: true });
  expect(() => translatePod(podSpec(), node())).toThrow(
    "hostPath type check failed: /run/dbus is not a directory (kubelet fails the pod).",
  );
});

describe("a field the translation does not know is refused, naming it", () => {
  const containers = (spec: Obj) => spec.containers as Obj[];
  it.each<[string, (spec: Obj) => void, string]>([
    [
      "a pod field",
      (s) => (s.hostNetwork = true),
      "spec has spec.hostNetwork, which the kubelet translation does not understand; teach test/support/kubelet.ts first.",
    ],
    [
      "a container field",
      (s) => (containers(s)[1].lifecycle = { preStop: {} }),
      "spec.containers[1] has spec.containers[1].lifecycle, which the kubelet translation does not understand; teach test/support/kubelet.ts first.",
    ],
    [
      "a security context field",
      (s) => ((containers(s)[0].securityContext as Obj).procMount = "Unmasked"),
      "spec.containers[0].securityContext has spec.containers[0].securityContext.procMount, which the kubelet translation does not understand; teach test/support/kubelet.ts first.",
    ],
    [
      "a seccomp profile type",
      (s) => ((containers(s)[1].securityContext as Obj).seccompProfile = { type: "Localhost" }),
      "spec.containers[1].securityContext.seccompProfile.type Localhost is not translated.",
    ],
    [
      "an env source",
      (s) =>
        (containers(s)[0].env as Obj[]).push({
          name: "TOKEN",
          valueFrom: { secretKeyRef: { name: "s", key: "k" } },
        }),
      "spec.containers[0].env[4].valueFrom has spec.containers[0].env[4].valueFrom.secretKeyRef, which the kubelet translation does not understand; teach test/support/kubelet.ts first.",
    ],
    [
      "a volume type",
      (s) => (s.volumes as Obj[]).push({ name: "cfg", configMap: { name: "c" } }),
      "spec.volumes[11] has spec.volumes[11].configMap, which the kubelet translation does not understand; teach test/support/kubelet.ts first.",
    ],
    [
      "a projected volume other than API access",
      (s) =>
        (s.volumes as Obj[]).push({
          name: "other-token",
          projected: { sources: [{ serviceAccountToken: { path: "token", audience: "vault" } }] },
        }),
      "spec.volumes[11].projected is not the API-access volume (token, kube-root-ca.crt's ca.crt, the namespace); only that projection is translated.",
    ],
  ])("%s", (_, change, message) => {
    const spec = podSpec();
    change(spec);
    let thrown: unknown;
    try {
      translatePod(spec, node());
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UnsupportedPodField);
    expect((thrown as Error).message).toBe(message);
  });
});
