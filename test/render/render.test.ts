/**
 * `npm run render` end to end, as a user runs it: a real tsx process runs index.ts under mocks for
 * each example stack, writes YAML and validates it with kubernetes-models (ESM-only, so it cannot
 * be loaded inside jest; the subprocess is the real path anyway).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";

const ROOT = path.join(__dirname, "..", "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
let tmp: string;

function render(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(TSX, [path.join(ROOT, "scripts", "render", "index.ts"), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function readAll(dir: string): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .map((file) => [file, YAML.parse(fs.readFileSync(path.join(dir, file), "utf8"))]),
  );
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-render-"));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("dev: every object written, schema-valid, per-namespace", () => {
  const out = path.join(tmp, "dev");
  const result = render("--stack", "dev", "--out", out);
  expect([result.status, result.stderr]).toEqual([0, ""]);
  expect(fs.readdirSync(out)).toEqual([
    "01-namespace-vnode-runtime.yaml",
    "02-serviceaccount-vnode-agent.yaml",
    "03-clusterrole-vnode-agent.yaml",
    "04-clusterrolebinding-vnode-agent.yaml",
    "05-role-vnode-agent.yaml",
    "06-rolebinding-vnode-agent.yaml",
    "07-runtimeclass-vnode.yaml",
    "08-daemonset-vnode-agent.yaml",
    "09-validatingadmissionpolicy-vnode-agent-node-writes.yaml",
    "10-validatingadmissionpolicybinding-vnode-agent-node-writes.yaml",
  ]);
  expect(result.stdout.split("\n")).toEqual([
    "KIND                              NAME                     NAMESPACE      MODE           FILE",
    "Namespace                         vnode-runtime                                          01-namespace-vnode-runtime.yaml",
    "ServiceAccount                    vnode-agent              vnode-runtime                 02-serviceaccount-vnode-agent.yaml",
    "ClusterRole                       vnode-agent                                            03-clusterrole-vnode-agent.yaml",
    "ClusterRoleBinding                vnode-agent                                            04-clusterrolebinding-vnode-agent.yaml",
    "Role                              vnode-agent              vnode-runtime                 05-role-vnode-agent.yaml",
    "RoleBinding                       vnode-agent              vnode-runtime                 06-rolebinding-vnode-agent.yaml",
    "RuntimeClass                      vnode                                   per-namespace  07-runtimeclass-vnode.yaml",
    "DaemonSet                         vnode-agent              vnode-runtime  per-namespace  08-daemonset-vnode-agent.yaml",
    "ValidatingAdmissionPolicy         vnode-agent-node-writes                                09-validatingadmissionpolicy-vnode-agent-node-writes.yaml",
    "ValidatingAdmissionPolicyBinding  vnode-agent-node-writes                                10-validatingadmissionpolicybinding-vnode-agent-node-writes.yaml",
    `10 objects of stack dev are schema-valid; wrote ${path.relative(ROOT, out)}/.`,
    "",
  ]);
  const objects = readAll(out);
  const daemonSet = objects["08-daemonset-vnode-agent.yaml"] as {
    apiVersion: string;
    kind: string;
    metadata: { labels: Record<string, string> };
    spec: { template: { spec: { containers: { env: unknown[] }[] } } };
  };
  expect([daemonSet.apiVersion, daemonSet.kind]).toEqual(["apps/v1", "DaemonSet"]);
  expect(daemonSet.metadata.labels.environment).toBe("dev");
  expect(daemonSet.spec.template.spec.containers[0].env[3]).toEqual({
    name: "VNODE_PER_POD",
    value: "false",
  });
  // apiVersion, kind, metadata lead every file, as in hand-written manifests.
  for (const [file, object] of Object.entries(objects)) {
    expect([file, Object.keys(object).slice(0, 3)]).toEqual([
      file,
      ["apiVersion", "kind", "metadata"],
    ]);
  }
});

test("ci: two pools, two modes, two RuntimeClasses, a PodMonitor, enforcement, schema-valid", () => {
  const out = path.join(tmp, "ci");
  const result = render("--stack", "ci", "--out", out);
  expect([result.status, result.stderr]).toEqual([0, ""]);
  const objects = readAll(out);
  expect(Object.keys(objects).filter((file) => /runtimeclass|daemonset/.test(file))).toEqual([
    "08-runtimeclass-vnode.yaml",
    "09-runtimeclass-vnode-per-pod.yaml",
    "10-daemonset-vnode-agent-ci-builds.yaml",
    "11-daemonset-vnode-agent-ci-services.yaml",
  ]);
  expect(result.stdout).toContain(
    "DaemonSet                         vnode-agent-ci-builds     vnode-runtime  per-pod        10-daemonset-vnode-agent-ci-builds.yaml",
  );
  expect(result.stdout).toContain(
    "DaemonSet                         vnode-agent-ci-services   vnode-runtime  per-namespace  11-daemonset-vnode-agent-ci-services.yaml",
  );
  expect(result.stdout).toContain(
    "PodMonitor                        vnode-agent               vnode-runtime                 12-podmonitor-vnode-agent.yaml",
  );
  expect(objects["12-podmonitor-vnode-agent.yaml"].spec).toEqual({
    podMetricsEndpoints: [{ interval: "30s", path: "/metrics", port: "metrics" }],
    selector: {
      matchLabels: {
        "app.kubernetes.io/instance": "vnode",
        "app.kubernetes.io/name": "vnode-agent",
      },
    },
  });
  expect(objects["09-runtimeclass-vnode-per-pod.yaml"].scheduling).toEqual({
    nodeSelector: { "vnode.loft.sh/isolation-mode": "per-pod", "vnode.loft.sh/runtime": "ready" },
    tolerations: [{ effect: "NoSchedule", key: "node.example.com/ci-builds", operator: "Exists" }],
  });
  // Enforcement: the webhook's ServiceAccount with the agent's, then TLS, server, configurations.
  expect(Object.keys(objects).filter((file) => /webhook/.test(file))).toEqual([
    "03-serviceaccount-vnode-webhook.yaml",
    "13-issuer-vnode-webhook-ca.yaml",
    "14-issuer-vnode-webhook-selfsigned.yaml",
    "15-certificate-vnode-webhook-ca.yaml",
    "16-certificate-vnode-webhook-tls.yaml",
    "17-deployment-vnode-webhook.yaml",
    "18-poddisruptionbudget-vnode-webhook.yaml",
    "19-service-vnode-webhook.yaml",
    "22-mutatingwebhookconfiguration-vnode-webhook.yaml",
    "23-mutatingwebhookconfiguration-vnode-webhook-namespaces.yaml",
    "24-validatingwebhookconfiguration-vnode-webhook.yaml",
    "25-validatingwebhookconfiguration-vnode-webhook-namespaces.yaml",
  ]);
  // The namespace label guard: every namespace but the exclusions.
  const guard = objects["25-validatingwebhookconfiguration-vnode-webhook-namespaces.yaml"] as {
    webhooks: { name: string; namespaceSelector: unknown; failurePolicy: string }[];
  };
  expect(guard.webhooks.map((w) => [w.name, w.failurePolicy, w.namespaceSelector])).toEqual([
    [
      "namespace-labels.validate.vnode.loft.sh",
      "Fail",
      {
        matchExpressions: [
          {
            key: "kubernetes.io/metadata.name",
            operator: "NotIn",
            values: ["kube-node-lease", "kube-system", "vnode-runtime"],
          },
        ],
      },
    ],
  ]);
  const validating = objects["24-validatingwebhookconfiguration-vnode-webhook.yaml"] as {
    webhooks: { namespaceSelector: unknown; failurePolicy: string }[];
  };
  const tenant = {
    key: "kubernetes.io/metadata.name",
    operator: "NotIn",
    values: ["kube-node-lease", "kube-system", "vnode-runtime"],
  };
  const key = "vnode.loft.sh/isolation";
  // One entry per case of the namespace's isolation label, each under the stack's tenant selector.
  expect(validating.webhooks.map((w) => [w.failurePolicy, w.namespaceSelector])).toEqual(
    [
      [{ key, operator: "DoesNotExist" }],
      [{ key, operator: "In", values: ["per-namespace"] }],
      [{ key, operator: "In", values: ["per-pod"] }],
      [
        { key, operator: "Exists" },
        { key, operator: "NotIn", values: ["per-namespace", "per-pod"] },
      ],
    ].map((isolation) => [
      "Fail",
      {
        matchExpressions: [tenant, ...isolation],
        matchLabels: { "ci.example.com/tenant": "true" },
      },
    ]),
  );
  expect(result.stdout).toContain("25 objects of stack ci are schema-valid;");
});

test("a rerun replaces the directory: stale files disappear", () => {
  const out = path.join(tmp, "rerun");
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, "99-stale.yaml"), "kind: Stale\n");
  expect(render("--stack", "dev", "--out", out).status).toBe(0);
  expect(fs.readdirSync(out)).not.toContain("99-stale.yaml");
  expect(fs.readdirSync(out).length).toBe(10);
  expect(fs.readdirSync(tmp).filter((name) => name.startsWith(".rerun"))).toEqual([]);
});

test("an unknown stack exits 2 and names the known ones", () => {
  const result = render("--stack", "prod");
  expect([result.status, result.stdout, result.stderr]).toEqual([
    2,
    "",
    'render: unknown stack "prod": there is no Pulumi.prod.yaml next to Pulumi.yaml; known stacks: ci, dev.\n',
  ]);
});

test("a bad argument exits 2", () => {
  const result = render("--stak", "dev");
  expect([result.status, result.stderr]).toEqual([
    2,
    'render: unknown argument "--stak"; allowed: --stack <name>, --out <dir>, --check <dir>.\n',
  ]);
});

test("--check fails on a schema-invalid object, naming it and the schema error", () => {
  const out = path.join(tmp, "broken");
  expect(render("--stack", "dev", "--out", out).status).toBe(0);
  const file = path.join(out, "08-daemonset-vnode-agent.yaml");
  fs.writeFileSync(
    file,
    fs.readFileSync(file, "utf8").replace("containerPort: 8090", 'containerPort: "8090"'),
  );
  const runtimeClass = path.join(out, "07-runtimeclass-vnode.yaml");
  fs.writeFileSync(
    runtimeClass,
    fs.readFileSync(runtimeClass, "utf8").replace("handler: vnode", "handler: [vnode]"),
  );
  const result = render("--check", out);
  expect(result.status).toBe(1);
  expect(result.stderr).toBe(
    [
      'render: RuntimeClass "vnode" (07-runtimeclass-vnode.yaml) is invalid: data/handler must be string.',
      'render: DaemonSet "vnode-agent" (08-daemonset-vnode-agent.yaml) is invalid: data/spec/template/spec/containers/0/ports/0/containerPort must be integer.',
      "render: 2 invalid object(s).",
      "",
    ].join("\n"),
  );
});

test("--check passes on a freshly rendered directory", () => {
  const out = path.join(tmp, "fresh");
  expect(render("--stack", "ci", "--out", out).status).toBe(0);
  const result = render("--check", out);
  expect([result.status, result.stderr]).toEqual([0, ""]);
  expect(result.stdout.trimEnd().split("\n").pop()).toBe(`25 objects in ${out} are schema-valid.`);
});
