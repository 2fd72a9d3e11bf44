/**
 * The namespace label guard and the Pod Security labelling as the component registers them (issue
 * 11 items 3 and 6): per backend, exactly which objects, their specs (the contract's CEL and
 * routes), selectors, failure policies and dependencies. What they decide is tested against one
 * table of cases in test/agent/namespace-guard.test.ts.
 */
import {
  EnforcementBackend,
  EnforcementMode,
  EnforcementScope,
  MutatingPolicyApiVersion,
  PodSecurityLevel,
  VNodeRuntime,
  VNodeRuntimeArgs,
} from "../../components/index";
import {
  enforcementRules,
  namespaceGuard,
  namespaceGuardCel,
  podSecurityMutationCel,
  scopeSelector,
} from "vnode-contract";
import { Recorder, type Registered, settle } from "./harness";

const recorder = new Recorder();
beforeAll(() => recorder.install());

const IMAGE = { ref: "ghcr.io/acme/vnode-agent:0.1.0" };
const GROUP = "kubernetes:admissionregistration.k8s.io";
const TENANTS = { matchLabels: { tenant: "true" } };
const EXCLUDED = ["kube-node-lease", "kube-system", "vnode-runtime"];
const NAME_NOT_IN = { key: "kubernetes.io/metadata.name", operator: "NotIn", values: EXCLUDED };
const RULES = enforcementRules({
  classes: { "per-namespace": "vnode" },
  excludedNamespaces: ["vnode-runtime"],
});
const LABELS = (instance: string) => ({
  "app.kubernetes.io/name": "vnode-agent",
  "app.kubernetes.io/instance": instance,
  "app.kubernetes.io/part-of": "vnode",
  "app.kubernetes.io/managed-by": "pulumi",
  "app.kubernetes.io/component": "enforcement",
});

async function create(name: string, args: Partial<VNodeRuntimeArgs>): Promise<void> {
  await settle(recorder, new VNodeRuntime(name, { agentImage: IMAGE, ...args }));
}
const namespaceObjects = (prefix: string): string[] =>
  recorder
    .of(prefix)
    .filter(
      (r) => r.name.includes("-namespace-guard") || r.name.includes("-namespace-pod-security"),
    )
    .map((r) => `${r.type.replace(`${GROUP}/`, "")} ${r.name}`)
    .sort();
const named = (prefix: string, name: string): Registered =>
  recorder.of(prefix).find((r) => r.name === name)!;
const args = (prefix: string): string[] =>
  (
    named(prefix, `${prefix}-webhook`).inputs as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    }
  ).spec.template.spec.containers[0].args;

describe("backend admission-policy, default guard", () => {
  beforeAll(() =>
    create("pol", {
      enforcement: {
        namespaceSelector: TENANTS,
        mode: EnforcementMode.Validate,
        backend: EnforcementBackend.AdmissionPolicy,
      },
    }),
  );

  test("a ValidatingAdmissionPolicy and its binding, nothing that mutates namespaces", () => {
    expect(namespaceObjects("pol")).toEqual([
      "v1:ValidatingAdmissionPolicy pol-namespace-guard-policy",
      "v1:ValidatingAdmissionPolicyBinding pol-namespace-guard-policy-binding",
    ]);
  });

  test("the policy: the contract's CEL for the tenant selector, only system:masters trusted, Fail", () => {
    const guard = namespaceGuard({ tenantSelector: TENANTS }, RULES);
    expect(guard.platformGroups).toEqual(["system:masters"]);
    expect(named("pol", "pol-namespace-guard-policy").inputs).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: "pol-namespace-guard", labels: LABELS("pol") },
      spec: { failurePolicy: "Fail", ...namespaceGuardCel(guard) },
    });
  });

  test("the binding: Deny, every namespace but the exclusions (never the tenant selector)", () => {
    const binding = named("pol", "pol-namespace-guard-policy-binding");
    expect(binding.inputs).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: "pol-namespace-guard", labels: LABELS("pol") },
      spec: {
        policyName: "pol-namespace-guard",
        validationActions: ["Deny"],
        matchResources: { namespaceSelector: { matchExpressions: [NAME_NOT_IN] } },
      },
    });
    expect(binding.dependencies).toEqual(["pol-namespace-guard-policy"]);
  });
});

test("admission-policy, all-except-exempt, restricted, validate only: the Pod Security MutatingAdmissionPolicy of mutatingPolicyApiVersion", async () => {
  await create("pss", {
    enforcement: {
      scope: EnforcementScope.AllExceptExempt,
      mode: EnforcementMode.Validate,
      backend: EnforcementBackend.AdmissionPolicy,
      mutatingPolicyApiVersion: MutatingPolicyApiVersion.V1beta1,
      podSecurityLevel: PodSecurityLevel.Restricted,
      namespaceLabelGuard: { platformGroups: ["platform-admins"] },
    },
  });
  expect(namespaceObjects("pss")).toEqual([
    "v1:ValidatingAdmissionPolicy pss-namespace-guard-policy",
    "v1:ValidatingAdmissionPolicyBinding pss-namespace-guard-policy-binding",
    "v1beta1:MutatingAdmissionPolicy pss-namespace-pod-security-policy",
    "v1beta1:MutatingAdmissionPolicyBinding pss-namespace-pod-security-policy-binding",
  ]);
  const guard = namespaceGuard(
    {
      tenantSelector: scopeSelector("all-except-exempt"),
      platformGroups: ["platform-admins"],
      podSecurityLevel: "restricted",
    },
    RULES,
  );
  expect(named("pss", "pss-namespace-pod-security-policy").inputs).toEqual({
    apiVersion: "admissionregistration.k8s.io/v1beta1",
    kind: "MutatingAdmissionPolicy",
    metadata: { name: "pss-namespace-pod-security", labels: LABELS("pss") },
    spec: { failurePolicy: "Ignore", ...podSecurityMutationCel(guard) },
  });
  expect(named("pss", "pss-namespace-pod-security-policy-binding").inputs).toEqual({
    apiVersion: "admissionregistration.k8s.io/v1beta1",
    kind: "MutatingAdmissionPolicyBinding",
    metadata: { name: "pss-namespace-pod-security", labels: LABELS("pss") },
    spec: {
      policyName: "pss-namespace-pod-security",
      matchResources: {
        namespaceSelector: {
          matchExpressions: [
            { key: "vnode.loft.sh/enforcement-exempt", operator: "NotIn", values: ["true"] },
            NAME_NOT_IN,
          ],
        },
      },
    },
  });
  // The pod policy is bound to the same scope: every namespace not labelled exempt.
  const podBinding = named("pss", "pss-validating-policy-binding").inputs as {
    spec: { matchResources: unknown };
  };
  expect(podBinding.spec.matchResources).toEqual({
    namespaceSelector: {
      matchExpressions: [
        { key: "vnode.loft.sh/enforcement-exempt", operator: "NotIn", values: ["true"] },
        NAME_NOT_IN,
      ],
    },
  });
});

describe("backend webhook, platform groups, baseline", () => {
  beforeAll(() =>
    create("web", {
      enforcement: {
        namespaceSelector: TENANTS,
        mode: EnforcementMode.MutateAndValidate,
        podSecurityLevel: PodSecurityLevel.Baseline,
        namespaceLabelGuard: {
          platformGroups: ["platform-admins", "system:serviceaccounts:argocd"],
        },
      },
    }),
  );

  test("two configurations route namespaces to the webhook, after it serves", () => {
    expect(namespaceObjects("web")).toEqual([
      "v1:MutatingWebhookConfiguration web-namespace-pod-security-webhook",
      "v1:ValidatingWebhookConfiguration web-namespace-guard-webhook",
    ]);
    for (const name of ["web-namespace-guard-webhook", "web-namespace-pod-security-webhook"]) {
      expect(named("web", name).dependencies).toEqual([
        "web-namespace",
        "web-runtime-class-vnode",
        "web-webhook",
        "web-webhook-certificate",
        "web-webhook-service",
      ]);
    }
  });

  const entry = (path: string) => ({
    admissionReviewVersions: ["v1"],
    sideEffects: "None",
    timeoutSeconds: 5,
    matchPolicy: "Equivalent",
    rules: [
      {
        apiGroups: [""],
        apiVersions: ["v1"],
        operations: ["CREATE", "UPDATE"],
        resources: ["namespaces"],
        scope: "Cluster",
      },
    ],
    clientConfig: { service: { name: "web-webhook", namespace: "vnode-runtime", path, port: 443 } },
  });
  const meta = {
    name: "web-webhook-namespaces",
    labels: {
      "app.kubernetes.io/name": "vnode-webhook",
      "app.kubernetes.io/instance": "web",
      "app.kubernetes.io/part-of": "vnode",
      "app.kubernetes.io/managed-by": "pulumi",
      "app.kubernetes.io/component": "webhook",
    },
    annotations: { "cert-manager.io/inject-ca-from": "vnode-runtime/web-webhook-tls" },
  };

  test("the guard: every namespace but the exclusions, Fail", () => {
    expect(named("web", "web-namespace-guard-webhook").inputs).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: meta,
      webhooks: [
        {
          name: "namespace-labels.validate.vnode.loft.sh",
          ...entry("/namespaces/validate"),
          failurePolicy: "Fail",
          namespaceSelector: { matchExpressions: [NAME_NOT_IN] },
        },
      ],
    });
  });

  test("the Pod Security mutation: the enforced namespaces, mutation's failure policy", () => {
    expect(named("web", "web-namespace-pod-security-webhook").inputs).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: meta,
      webhooks: [
        {
          name: "pod-security.mutate.vnode.loft.sh",
          ...entry("/namespaces/mutate"),
          failurePolicy: "Ignore",
          reinvocationPolicy: "Never",
          namespaceSelector: { matchLabels: { tenant: "true" }, matchExpressions: [NAME_NOT_IN] },
        },
      ],
    });
  });

  test("the webhook's command line carries the guard", () => {
    expect(args("web").slice(args("web").indexOf("--tenant-selector"))).toEqual([
      "--tenant-selector",
      '{"matchLabels":{"tenant":"true"}}',
      "--platform-group",
      "platform-admins",
      "--platform-group",
      "system:serviceaccounts:argocd",
      "--pod-security-level",
      "baseline",
    ]);
  });
});

test("namespaceLabelGuard.enabled false: no namespace object, no guard flag", async () => {
  await create("off", {
    enforcement: {
      namespaceSelector: TENANTS,
      mode: EnforcementMode.Validate,
      namespaceLabelGuard: { enabled: false },
    },
  });
  expect(namespaceObjects("off")).toEqual([]);
  expect(args("off")).not.toContain("--tenant-selector");
});

test("an invalid guard input registers nothing", async () => {
  const before = recorder.of("bad").length;
  expect(
    () =>
      new VNodeRuntime("bad", {
        agentImage: IMAGE,
        enforcement: {
          namespaceSelector: TENANTS,
          mode: EnforcementMode.Validate,
          namespaceLabelGuard: { platformGroups: ["system:serviceaccounts"] },
        },
      }),
  ).toThrow(
    'enforcement.namespaceLabelGuard.platformGroups: "system:serviceaccounts" cannot be a platform group: every ServiceAccount is in it, so the guard would let everyone relabel namespaces.',
  );
  expect(recorder.of("bad").length).toBe(before);
});
