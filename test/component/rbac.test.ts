/** RBAC exactly as in the contract: the agent gets the verbs it uses and nothing more. */
import { AgentConfinement, VNodeRuntime } from "../../components/index";
import { AGENT_CLUSTER_RULES, AGENT_NAMESPACE_RULES, agentNodePolicyCel } from "vnode-contract";
import { Recorder, settle } from "./harness";

const recorder = new Recorder();
const RBAC = "kubernetes:rbac.authorization.k8s.io/v1";
const LABELS = {
  "app.kubernetes.io/name": "vnode-agent",
  "app.kubernetes.io/instance": "vnode",
  "app.kubernetes.io/part-of": "vnode",
  "app.kubernetes.io/managed-by": "pulumi",
};

beforeAll(async () => {
  await recorder.install();
  const runtime = new VNodeRuntime("vnode", { agentImage: { ref: "img:1" } });
  await settle(recorder, runtime);
});

test("ClusterRole: get/patch nodes, create events, list pods; nothing else", () => {
  const rules = recorder.one("vnode", `${RBAC}:ClusterRole`).inputs.rules;
  expect(rules).toEqual([
    { apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch", "watch"] },
    { apiGroups: [""], resources: ["events"], verbs: ["create"] },
    { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
  ]);
  expect(rules).toEqual(AGENT_CLUSTER_RULES);
});

test("Role: get this component's DaemonSets in its namespace", () => {
  const role = recorder.one("vnode", `${RBAC}:Role`).inputs;
  expect(role.metadata).toEqual({
    name: "vnode-agent",
    namespace: "vnode-runtime",
    labels: LABELS,
  });
  expect(role.rules).toEqual([
    {
      apiGroups: ["apps"],
      resources: ["daemonsets"],
      resourceNames: ["vnode-agent"],
      verbs: ["get"],
    },
  ]);
  const { resourceNames: _names, ...rule } = (role.rules as Record<string, unknown>[])[0];
  void _names;
  expect([rule]).toEqual(AGENT_NAMESPACE_RULES);
});

test("bindings tie exactly these roles to the agent's ServiceAccount", () => {
  const subject = [{ kind: "ServiceAccount", name: "vnode-agent", namespace: "vnode-runtime" }];
  expect(recorder.one("vnode", `${RBAC}:ClusterRoleBinding`).inputs).toEqual({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: "vnode-agent", labels: LABELS },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "vnode-agent" },
    subjects: subject,
  });
  expect(recorder.one("vnode", `${RBAC}:RoleBinding`).inputs).toEqual({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "vnode-agent", namespace: "vnode-runtime", labels: LABELS },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "vnode-agent" },
    subjects: subject,
  });
  expect(recorder.one("vnode", "kubernetes:core/v1:ServiceAccount").inputs).toEqual({
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "vnode-agent", namespace: "vnode-runtime", labels: LABELS },
  });
});

test("no wildcard and no other RBAC object", () => {
  const rbac = recorder.of("vnode").filter((r) => r.type.startsWith(RBAC));
  expect(rbac.map((r) => r.type).sort()).toEqual([
    `${RBAC}:ClusterRole`,
    `${RBAC}:ClusterRoleBinding`,
    `${RBAC}:Role`,
    `${RBAC}:RoleBinding`,
  ]);
  expect(JSON.stringify(rbac.map((r) => r.inputs))).not.toContain('"*"');
});

const VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy";
const VAPB = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding";

test("the agent's node writes are confined by default: its node, its labels (issue 11)", () => {
  const policy = recorder.one("vnode", VAP).inputs;
  expect(policy.metadata).toEqual({ name: "vnode-agent-node-writes", labels: LABELS });
  expect(policy.spec).toEqual({
    failurePolicy: "Fail",
    ...agentNodePolicyCel("system:serviceaccount:vnode-runtime:vnode-agent", "node-and-labels"),
  });
  expect(recorder.one("vnode", VAPB).inputs).toEqual({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name: "vnode-agent-node-writes", labels: LABELS },
    spec: { policyName: "vnode-agent-node-writes", validationActions: ["Deny"] },
  });
});

test("agentConfinement labels-only drops the node check; none creates no policy", async () => {
  const labelsOnly = new VNodeRuntime("lo", {
    agentImage: { ref: "img:1" },
    namespace: "sys-vnode",
    agentConfinement: AgentConfinement.LabelsOnly,
  });
  const none = new VNodeRuntime("nopolicy", {
    agentImage: { ref: "img:1" },
    agentConfinement: AgentConfinement.None,
  });
  await settle(recorder, labelsOnly);
  await settle(recorder, none);
  expect(recorder.one("lo", VAP).inputs.spec).toEqual({
    failurePolicy: "Fail",
    ...agentNodePolicyCel("system:serviceaccount:sys-vnode:lo-agent", "labels-only"),
  });
  expect(recorder.of("nopolicy").filter((r) => r.type === VAP || r.type === VAPB)).toEqual([]);
});
