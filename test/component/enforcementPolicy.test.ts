/**
 * Tenancy enforcement, AdmissionPolicy backend, as registered with the (mock) engine: the CEL
 * policies of cel.ts with the component's rules (classes, default mode, exclusions) and failure
 * policies, their bindings, the MutatingAdmissionPolicy API version, and no webhook at all.
 */
import {
  AgentConfinement,
  EnforcementBackend,
  EnforcementMode,
  FailurePolicy,
  IsolationMode,
  MutatingPolicyApiVersion,
  VNodeRuntime,
  VNodeRuntimeArgs,
} from "../../components/index";
import { enforcementRules, mutatingPolicyCel, validatingPolicyCel } from "vnode-contract";
import { Recorder, settle } from "./harness";

const recorder = new Recorder();
beforeAll(() => recorder.install());

const IMAGE = { ref: "ghcr.io/acme/vnode-agent:0.1.0" };
const GROUP = "kubernetes:admissionregistration.k8s.io";
const VAP = `${GROUP}/v1:ValidatingAdmissionPolicy`;
const VAPB = `${GROUP}/v1:ValidatingAdmissionPolicyBinding`;
const LABELS = {
  "app.kubernetes.io/name": "vnode-agent",
  "app.kubernetes.io/instance": "cel",
  "app.kubernetes.io/part-of": "vnode",
  "app.kubernetes.io/managed-by": "pulumi",
  "app.kubernetes.io/component": "enforcement",
};
const NOT_EXCLUDED = {
  name: "not-excluded-namespace",
  expression: '!(request.namespace in ["kube-node-lease", "kube-system", "vnode-runtime"])',
};

async function create(name: string, args: Partial<VNodeRuntimeArgs>): Promise<void> {
  // The agent's own node policy (rbac.test.ts) and the namespace label guard
  // (namespaceGuard.test.ts) are left out here: these tests count policies.
  const runtime = new VNodeRuntime(name, {
    agentImage: IMAGE,
    agentConfinement: AgentConfinement.None,
    ...args,
    ...(args.enforcement
      ? { enforcement: { namespaceLabelGuard: { enabled: false }, ...args.enforcement } }
      : {}),
  });
  await settle(recorder, runtime);
}

const childTypes = (prefix: string): string[] =>
  recorder
    .of(prefix)
    .filter((r) => r.type.startsWith(GROUP) || /Deployment|cert-manager|Service$/.test(r.type))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((r) => `${r.type} ${r.name}`);

describe("mutate-and-validate over two pools", () => {
  // What the component must derive from its args: both classes, isolationMode as default mode,
  // the runtime namespace excluded.
  const rules = enforcementRules({
    classes: { "per-namespace": "vnode", "per-pod": "vnode-per-pod" },
    defaultMode: "per-namespace",
    excludedNamespaces: ["vnode-runtime"],
  });
  beforeAll(() =>
    create("cel", {
      pools: [
        { name: "a", nodeSelector: { pool: "a" } },
        { name: "b", isolationMode: IsolationMode.PerPod, nodeSelector: { pool: "b" } },
      ],
      enforcement: {
        namespaceSelector: { matchLabels: { tenant: "true" } },
        mode: EnforcementMode.MutateAndValidate,
        backend: EnforcementBackend.AdmissionPolicy,
      },
    }),
  );

  test("two policies and two bindings, no server, no certificate", () => {
    expect(childTypes("cel")).toEqual([
      `${GROUP}/v1:MutatingAdmissionPolicy cel-mutating-policy`,
      `${GROUP}/v1:MutatingAdmissionPolicyBinding cel-mutating-policy-binding`,
      `${VAP} cel-validating-policy`,
      `${VAPB} cel-validating-policy-binding`,
    ]);
  });

  test("the ValidatingAdmissionPolicy: cel.ts's CEL for these rules, Fail on error", () => {
    const policy = recorder.one("cel", VAP).inputs as {
      spec: { matchConditions: unknown; variables: { name: string; expression: string }[] };
    };
    expect(policy).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: "cel-enforcement", labels: LABELS },
      spec: { failurePolicy: "Fail", ...validatingPolicyCel(rules) },
    });
    // The wiring, literally: the exclusions, and the class of each mode.
    expect(policy.spec.matchConditions).toEqual([NOT_EXCLUDED]);
    expect(policy.spec.variables[2]).toEqual({
      name: "expectedClass",
      expression:
        'variables.isolation == "per-namespace" ? "vnode" : variables.isolation == "per-pod" ? "vnode-per-pod" : ""',
    });
  });

  test("the MutatingAdmissionPolicy: v1 by default, per-pod label routing, Ignore on error", () => {
    const policy = recorder.one("cel", `${GROUP}/v1:MutatingAdmissionPolicy`).inputs as {
      spec: { variables: { name: string; expression: string }[] };
    };
    expect(policy).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingAdmissionPolicy",
      metadata: { name: "cel-enforcement", labels: LABELS },
      spec: { failurePolicy: "Ignore", ...mutatingPolicyCel(rules) },
    });
    expect(policy.spec.variables[1]).toEqual({
      name: "runtimeClass",
      expression: 'variables.isolation == "per-pod" ? "vnode-per-pod" : "vnode"',
    });
  });

  test("bindings: Deny, the tenant selector minus the exclusions, after the policy and the classes", () => {
    const namespaceSelector = {
      matchLabels: { tenant: "true" },
      matchExpressions: [
        {
          key: "kubernetes.io/metadata.name",
          operator: "NotIn",
          values: ["kube-node-lease", "kube-system", "vnode-runtime"],
        },
      ],
    };
    const validating = recorder.one("cel", VAPB);
    expect(validating.inputs).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: "cel-enforcement", labels: LABELS },
      spec: {
        policyName: "cel-enforcement",
        validationActions: ["Deny"],
        matchResources: { namespaceSelector },
      },
    });
    const mutating = recorder.one("cel", `${GROUP}/v1:MutatingAdmissionPolicyBinding`);
    expect(mutating.inputs).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingAdmissionPolicyBinding",
      metadata: { name: "cel-enforcement", labels: LABELS },
      spec: { policyName: "cel-enforcement", matchResources: { namespaceSelector } },
    });
    const classes = ["cel-runtime-class-vnode", "cel-runtime-class-vnode-per-pod"];
    expect(validating.dependencies).toEqual([...classes, "cel-validating-policy"].sort());
    expect(mutating.dependencies).toEqual([...classes, "cel-mutating-policy"].sort());
  });
});

describe("API versions of the MutatingAdmissionPolicy", () => {
  test.each([
    [MutatingPolicyApiVersion.V1beta1, "v1beta1"],
    [MutatingPolicyApiVersion.V1alpha1, "v1alpha1"],
  ])("%s", async (version, expected) => {
    const name = `map-${expected}`;
    await create(name, {
      isolationMode: IsolationMode.PerPod,
      enforcement: {
        namespaceSelector: { matchLabels: { tenant: "true" } },
        mode: EnforcementMode.Mutate,
        backend: EnforcementBackend.AdmissionPolicy,
        mutatingPolicyApiVersion: version,
        mutateFailurePolicy: FailurePolicy.Fail,
      },
    });
    expect(childTypes(name)).toEqual([
      `${GROUP}/${expected}:MutatingAdmissionPolicy ${name}-mutating-policy`,
      `${GROUP}/${expected}:MutatingAdmissionPolicyBinding ${name}-mutating-policy-binding`,
    ]);
    const policy = recorder.one(name, `${GROUP}/${expected}:MutatingAdmissionPolicy`).inputs as {
      apiVersion: string;
      spec: { failurePolicy: string; variables: unknown[] };
    };
    expect([policy.apiVersion, policy.spec.failurePolicy]).toEqual([
      `admissionregistration.k8s.io/${expected}`,
      "Fail",
    ]);
    // One class: every tenant pod gets it.
    expect(policy.spec.variables[1]).toEqual({ name: "runtimeClass", expression: '"vnode"' });
  });
});

test("validate only: the ValidatingAdmissionPolicy and its binding, nothing that mutates", async () => {
  await create("vonly", {
    enforcement: {
      namespaceSelector: { matchLabels: { tenant: "true" } },
      mode: EnforcementMode.Validate,
      backend: EnforcementBackend.AdmissionPolicy,
      validateFailurePolicy: FailurePolicy.Ignore,
      acknowledgeValidationFailOpen: true,
    },
  });
  expect(childTypes("vonly")).toEqual([
    `${VAP} vonly-validating-policy`,
    `${VAPB} vonly-validating-policy-binding`,
  ]);
  expect(
    (recorder.one("vonly", VAP).inputs as { spec: { failurePolicy: string } }).spec.failurePolicy,
  ).toBe("Ignore");
});
