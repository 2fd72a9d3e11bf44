/**
 * Tenancy enforcement, webhook backend, as registered with the (mock) engine: the webhook's
 * Deployment, Service, PodDisruptionBudget and ServiceAccount, the webhook configurations per mode,
 * the three TLS sources (self-signed CA, the user's issuer, cert-manager installed by the
 * component), the exclusions, the failure policies, and the order the engine is told to create
 * things in (dependencies as the SDK sends them).
 */
import * as pulumi from "@pulumi/pulumi";
import {
  EnforcementMode,
  FailurePolicy,
  IsolationMode,
  IssuerKind,
  LabelSelectorOperator,
  VNodeRuntime,
  VNodeRuntimeArgs,
} from "../../components/index";
import { Recorder, Registered, containsSecret, settle } from "./harness";

const recorder = new Recorder();
beforeAll(() => recorder.install());

const IMAGE = { ref: "ghcr.io/acme/vnode-agent:0.1.0" };
const TENANTS = { matchLabels: { tenant: "true" } };
const T = {
  deployment: "kubernetes:apps/v1:Deployment",
  service: "kubernetes:core/v1:Service",
  serviceAccount: "kubernetes:core/v1:ServiceAccount",
  pdb: "kubernetes:policy/v1:PodDisruptionBudget",
  mutating: "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration",
  validating: "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration",
  issuer: "kubernetes:cert-manager.io/v1:Issuer",
  certificate: "kubernetes:cert-manager.io/v1:Certificate",
  certManager: "kubernetes-cert-manager:index:CertManager",
  secret: "kubernetes:core/v1:Secret",
};
const ENFORCEMENT_TYPES = new Set(Object.values(T));

/** Labels of the webhook's objects of a component named `instance`. */
const webhookLabels = (instance: string, component = "webhook"): Record<string, string> => ({
  "app.kubernetes.io/name": "vnode-webhook",
  "app.kubernetes.io/instance": instance,
  "app.kubernetes.io/part-of": "vnode",
  "app.kubernetes.io/managed-by": "pulumi",
  "app.kubernetes.io/component": component,
});
const selector = (instance: string): Record<string, string> => ({
  "app.kubernetes.io/name": "vnode-webhook",
  "app.kubernetes.io/instance": instance,
});
const POD_CREATE = [
  {
    apiGroups: [""],
    apiVersions: ["v1"],
    operations: ["CREATE"],
    resources: ["pods"],
    scope: "Namespaced",
  },
];
const NAME_NOT_IN = (...namespaces: string[]): unknown => ({
  key: "kubernetes.io/metadata.name",
  operator: "NotIn",
  values: namespaces,
});

async function create(name: string, args: Partial<VNodeRuntimeArgs>): Promise<void> {
  const runtime = new VNodeRuntime(name, { agentImage: IMAGE, ...args });
  await settle(recorder, runtime);
}

/** The enforcement children of a component, as `type name` lines, by name. */
const enforcementChildren = (prefix: string): string[] =>
  recorder
    .of(prefix)
    .filter((r) => ENFORCEMENT_TYPES.has(r.type) && r.name !== `${prefix}-service-account`)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((r) => `${r.type} ${r.name}`);

type Webhook = {
  name: string;
  failurePolicy: string;
  namespaceSelector: unknown;
  clientConfig: { service: { path: string } };
};
const webhooks = (r: Registered): Webhook[] => (r.inputs as { webhooks: Webhook[] }).webhooks;
/** The pod enforcement's own configuration (the namespace guard's is `<name>-namespace-guard-webhook`). */
const podConfig = (prefix: string, type: string): Registered =>
  recorder.byType(prefix, type).find((r) => !r.name.includes("-namespace-"))!;
const containerArgs = (r: Registered): string[] =>
  (r.inputs as { spec: { template: { spec: { containers: { args: string[] }[] } } } }).spec.template
    .spec.containers[0].args;

describe("mutate-and-validate over two pools, self-signed CA", () => {
  beforeAll(() =>
    create("enf", {
      isolationMode: IsolationMode.PerPod,
      pools: [
        { name: "builds", nodeSelector: { pool: "builds" } },
        {
          name: "services",
          isolationMode: IsolationMode.PerNamespace,
          nodeSelector: { pool: "services" },
        },
      ],
      enforcement: { namespaceSelector: TENANTS, mode: EnforcementMode.MutateAndValidate },
    }),
  );

  test("registers the webhook, both configurations and the CA chain, all parented", () => {
    expect(enforcementChildren("enf")).toEqual([
      `${T.mutating} enf-mutating-webhook`,
      `${T.validating} enf-namespace-guard-webhook`,
      `${T.validating} enf-validating-webhook`,
      `${T.deployment} enf-webhook`,
      `${T.certificate} enf-webhook-ca-certificate`,
      `${T.issuer} enf-webhook-ca-issuer`,
      `${T.certificate} enf-webhook-certificate`,
      `${T.pdb} enf-webhook-pdb`,
      `${T.issuer} enf-webhook-selfsigned-issuer`,
      `${T.service} enf-webhook-service`,
      `${T.serviceAccount} enf-webhook-service-account`,
    ]);
    for (const child of recorder.of("enf").filter((r) => ENFORCEMENT_TYPES.has(r.type))) {
      expect(child.urn).toBe(
        `urn:pulumi:test::vnode-test::vnode:index:VNodeRuntime$${child.type}::${child.name}`,
      );
    }
  });

  test("the Deployment: 2 replicas spread over nodes, restricted security, the TLS Secret mounted", () => {
    expect(recorder.one("enf", T.deployment).inputs).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "enf-webhook", namespace: "vnode-runtime", labels: webhookLabels("enf") },
      spec: {
        replicas: 2,
        selector: { matchLabels: selector("enf") },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: { labels: webhookLabels("enf") },
          spec: {
            serviceAccountName: "enf-webhook",
            priorityClassName: "system-cluster-critical",
            automountServiceAccountToken: false,
            nodeSelector: { "kubernetes.io/os": "linux" },
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "ScheduleAnyway",
                labelSelector: { matchLabels: selector("enf") },
              },
            ],
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              runAsGroup: 65532,
              fsGroup: 65532,
              seccompProfile: { type: "RuntimeDefault" },
            },
            terminationGracePeriodSeconds: 30,
            containers: [
              {
                name: "webhook",
                image: "ghcr.io/acme/vnode-agent:0.1.0",
                imagePullPolicy: "IfNotPresent",
                command: ["vnode-agent"],
                args: [
                  "webhook",
                  "--listen",
                  ":8443",
                  "--tls-cert-file",
                  "/etc/vnode-webhook/tls/tls.crt",
                  "--tls-key-file",
                  "/etc/vnode-webhook/tls/tls.key",
                  "--class",
                  "per-namespace=vnode",
                  "--class",
                  "per-pod=vnode-per-pod",
                  "--default-mode",
                  "per-pod",
                  "--exclude-namespace",
                  "vnode-runtime",
                  "--tenant-selector",
                  '{"matchLabels":{"tenant":"true"}}',
                ],
                env: [
                  {
                    name: "POD_NAMESPACE",
                    valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
                  },
                  {
                    name: "NODE_OPTIONS",
                    value: "--max-old-space-size=48 --max-semi-space-size=2 --expose-gc",
                  },
                ],
                ports: [{ name: "https", containerPort: 8443, protocol: "TCP" }],
                readinessProbe: {
                  httpGet: { path: "/readyz", port: "https", scheme: "HTTPS" },
                  periodSeconds: 5,
                  timeoutSeconds: 2,
                  failureThreshold: 2,
                },
                livenessProbe: {
                  httpGet: { path: "/healthz", port: "https", scheme: "HTTPS" },
                  initialDelaySeconds: 5,
                  periodSeconds: 10,
                  timeoutSeconds: 5,
                  failureThreshold: 3,
                },
                resources: {
                  requests: { cpu: "20m", memory: "112Mi" },
                  limits: { memory: "320Mi" },
                },
                terminationMessagePolicy: "FallbackToLogsOnError",
                securityContext: {
                  runAsNonRoot: true,
                  privileged: false,
                  allowPrivilegeEscalation: false,
                  capabilities: { drop: ["ALL"] },
                  readOnlyRootFilesystem: true,
                },
                volumeMounts: [
                  { name: "tls", mountPath: "/etc/vnode-webhook/tls", readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: "tls", secret: { secretName: "enf-webhook-tls", defaultMode: 0o440 } },
            ],
          },
        },
      },
    });
  });

  test("the webhook pods match neither the agent DaemonSets' selectors nor each other's", () => {
    const daemonSetSelectors = recorder
      .byType("enf", "kubernetes:apps/v1:DaemonSet")
      .map((r) => (r.inputs as { spec: { selector: { matchLabels: object } } }).spec.selector);
    const podLabels = webhookLabels("enf");
    for (const { matchLabels } of daemonSetSelectors) {
      const matches = Object.entries(matchLabels).every(([k, v]) => podLabels[k] === v);
      expect(matches).toBe(false);
    }
  });

  test("Service 443 -> https, a PodDisruptionBudget of one, a ServiceAccount without token or RBAC", () => {
    expect(recorder.one("enf", T.service).inputs).toEqual({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "enf-webhook", namespace: "vnode-runtime", labels: webhookLabels("enf") },
      spec: {
        type: "ClusterIP",
        selector: selector("enf"),
        ports: [{ name: "https", port: 443, targetPort: "https", protocol: "TCP" }],
      },
    });
    expect(recorder.one("enf", T.pdb).inputs).toEqual({
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name: "enf-webhook", namespace: "vnode-runtime", labels: webhookLabels("enf") },
      spec: {
        minAvailable: 1,
        selector: { matchLabels: selector("enf") },
        unhealthyPodEvictionPolicy: "AlwaysAllow",
      },
    });
    expect(
      recorder.byType("enf", T.serviceAccount).find((r) => r.name === "enf-webhook-service-account")
        ?.inputs,
    ).toEqual({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "enf-webhook", namespace: "vnode-runtime", labels: webhookLabels("enf") },
      automountServiceAccountToken: false,
    });
    // The only RBAC is the agent's: nothing binds the webhook's ServiceAccount.
    const bindings = recorder
      .of("enf")
      .filter((r) => /RoleBinding$/.test(r.type))
      .map((r) => (r.inputs as { subjects: { name: string }[] }).subjects.map((s) => s.name));
    expect(bindings).toEqual([["enf-agent"], ["enf-agent"]]);
  });

  test("one mutating entry per mode, routed by the isolation label; Ignore on failure", () => {
    const config = recorder.one("enf", T.mutating);
    expect(config.inputs).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: {
        name: "enf-webhook",
        labels: webhookLabels("enf"),
        annotations: { "cert-manager.io/inject-ca-from": "vnode-runtime/enf-webhook-tls" },
      },
      webhooks: [
        {
          name: "per-namespace.mutate.vnode.loft.sh",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          timeoutSeconds: 5,
          matchPolicy: "Equivalent",
          rules: POD_CREATE,
          clientConfig: {
            service: {
              name: "enf-webhook",
              namespace: "vnode-runtime",
              path: "/mutate/per-namespace",
              port: 443,
            },
          },
          failurePolicy: "Ignore",
          reinvocationPolicy: "Never",
          namespaceSelector: {
            matchLabels: { tenant: "true" },
            matchExpressions: [
              NAME_NOT_IN("kube-node-lease", "kube-system", "vnode-runtime"),
              { key: "vnode.loft.sh/isolation", operator: "In", values: ["per-namespace"] },
            ],
          },
        },
        {
          name: "per-pod.mutate.vnode.loft.sh",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          timeoutSeconds: 5,
          matchPolicy: "Equivalent",
          rules: POD_CREATE,
          clientConfig: {
            service: {
              name: "enf-webhook",
              namespace: "vnode-runtime",
              path: "/mutate/per-pod",
              port: 443,
            },
          },
          failurePolicy: "Ignore",
          reinvocationPolicy: "Never",
          // The default mode (isolationMode per-pod) takes every tenant not labelled otherwise.
          namespaceSelector: {
            matchLabels: { tenant: "true" },
            matchExpressions: [
              NAME_NOT_IN("kube-node-lease", "kube-system", "vnode-runtime"),
              { key: "vnode.loft.sh/isolation", operator: "NotIn", values: ["per-namespace"] },
            ],
          },
        },
      ],
    });
  });

  test("one validating entry per case of the isolation label, exactly one for any namespace; Fail on failure", () => {
    const entry = (name: string, path: string, ...isolation: object[]) => ({
      name: `${name}.validate.vnode.loft.sh`,
      admissionReviewVersions: ["v1"],
      sideEffects: "None",
      timeoutSeconds: 5,
      matchPolicy: "Equivalent",
      rules: POD_CREATE,
      clientConfig: {
        service: { name: "enf-webhook", namespace: "vnode-runtime", path, port: 443 },
      },
      failurePolicy: "Fail",
      namespaceSelector: {
        matchLabels: { tenant: "true" },
        matchExpressions: [
          NAME_NOT_IN("kube-node-lease", "kube-system", "vnode-runtime"),
          ...isolation,
        ],
      },
    });
    const key = "vnode.loft.sh/isolation";
    expect(podConfig("enf", T.validating).inputs).toEqual({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: {
        name: "enf-webhook",
        labels: webhookLabels("enf"),
        annotations: { "cert-manager.io/inject-ca-from": "vnode-runtime/enf-webhook-tls" },
      },
      // The default mode here is per-pod (the component's isolationMode).
      webhooks: [
        entry("unlabelled", "/validate/per-pod", { key, operator: "DoesNotExist" }),
        entry("per-namespace", "/validate/per-namespace", {
          key,
          operator: "In",
          values: ["per-namespace"],
        }),
        entry("per-pod", "/validate/per-pod", { key, operator: "In", values: ["per-pod"] }),
        entry(
          "unknown-isolation",
          "/validate/unknown-isolation",
          { key, operator: "Exists" },
          { key, operator: "NotIn", values: ["per-namespace", "per-pod"] },
        ),
      ],
    });
  });

  test("a self-signed Issuer signs a CA, whose Issuer signs the Service's certificate", () => {
    const tls = webhookLabels("enf", "webhook-tls");
    const meta = (name: string): unknown => ({ name, namespace: "vnode-runtime", labels: tls });
    const key = { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" };
    const byName = (type: string, name: string): unknown =>
      recorder.byType("enf", type).find((r) => r.name === name)?.inputs;
    expect(byName(T.issuer, "enf-webhook-selfsigned-issuer")).toEqual({
      apiVersion: "cert-manager.io/v1",
      kind: "Issuer",
      metadata: meta("enf-webhook-selfsigned"),
      spec: { selfSigned: {} },
    });
    expect(byName(T.certificate, "enf-webhook-ca-certificate")).toEqual({
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: meta("enf-webhook-ca"),
      spec: {
        isCA: true,
        commonName: "vnode enforcement webhook CA",
        secretName: "enf-webhook-ca",
        duration: "26280h",
        privateKey: key,
        issuerRef: { group: "cert-manager.io", kind: "Issuer", name: "enf-webhook-selfsigned" },
      },
    });
    expect(byName(T.issuer, "enf-webhook-ca-issuer")).toEqual({
      apiVersion: "cert-manager.io/v1",
      kind: "Issuer",
      metadata: meta("enf-webhook-ca"),
      spec: { ca: { secretName: "enf-webhook-ca" } },
    });
    expect(byName(T.certificate, "enf-webhook-certificate")).toEqual({
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: meta("enf-webhook-tls"),
      spec: {
        secretName: "enf-webhook-tls",
        secretTemplate: { labels: tls },
        dnsNames: ["enf-webhook", "enf-webhook.vnode-runtime", "enf-webhook.vnode-runtime.svc"],
        usages: ["digital signature", "server auth"],
        duration: "2160h",
        renewBefore: "360h",
        privateKey: key,
        issuerRef: { group: "cert-manager.io", kind: "Issuer", name: "enf-webhook-ca" },
      },
    });
  });

  test("order: CA chain, certificate, Deployment, then the configurations after everything they call", () => {
    const deps = (name: string): string[] =>
      recorder.of("enf").find((r) => r.name === name)?.dependencies ?? ["<not registered>"];
    expect(deps("enf-webhook-selfsigned-issuer")).toEqual(["enf-namespace"]);
    expect(deps("enf-webhook-ca-certificate")).toEqual([
      "enf-namespace",
      "enf-webhook-selfsigned-issuer",
    ]);
    expect(deps("enf-webhook-ca-issuer")).toEqual(["enf-namespace", "enf-webhook-ca-certificate"]);
    expect(deps("enf-webhook-certificate")).toEqual(["enf-namespace", "enf-webhook-ca-issuer"]);
    expect(deps("enf-webhook")).toEqual([
      "enf-namespace",
      "enf-webhook-certificate",
      "enf-webhook-service-account",
    ]);
    const serving = [
      "enf-namespace",
      "enf-runtime-class-vnode",
      "enf-runtime-class-vnode-per-pod",
      "enf-webhook",
      "enf-webhook-certificate",
      "enf-webhook-service",
    ];
    expect(deps("enf-mutating-webhook")).toEqual(serving);
    expect(deps("enf-validating-webhook")).toEqual(serving);
  });

  test("no Secret is created and no key material passes through Pulumi", () => {
    expect(recorder.byType("enf", T.secret)).toEqual([]);
    for (const child of recorder.of("enf")) {
      expect([child.name, containsSecret(child.inputs)]).toEqual([child.name, false]);
      expect(JSON.stringify(child.inputs)).not.toMatch(/BEGIN|caBundle/);
    }
  });
});

describe("validate only, the user's ClusterIssuer, failurePolicy Ignore, custom namespace", () => {
  beforeAll(() =>
    create("val", {
      namespace: "platform-vnode",
      runtimeClassName: "sandbox",
      enforcement: {
        namespaceSelector: {
          matchExpressions: [
            { key: "team", operator: LabelSelectorOperator.In, values: ["a", "b"] },
            { key: "sandbox-exempt", operator: LabelSelectorOperator.DoesNotExist },
          ],
        },
        mode: EnforcementMode.Validate,
        validateFailurePolicy: FailurePolicy.Ignore,
        acknowledgeValidationFailOpen: true,
      },
      certManager: { issuerRef: { name: "corp-ca", kind: IssuerKind.ClusterIssuer } },
    }),
  );

  test("no mutating configuration and no CA chain: the serving certificate uses the user's issuer", () => {
    expect(enforcementChildren("val")).toEqual([
      `${T.validating} val-namespace-guard-webhook`,
      `${T.validating} val-validating-webhook`,
      `${T.deployment} val-webhook`,
      `${T.certificate} val-webhook-certificate`,
      `${T.pdb} val-webhook-pdb`,
      `${T.service} val-webhook-service`,
      `${T.serviceAccount} val-webhook-service-account`,
    ]);
    const certificate = recorder.one("val", T.certificate);
    expect(
      (certificate.inputs as { spec: { issuerRef: unknown; dnsNames: unknown } }).spec,
    ).toEqual(
      expect.objectContaining({
        issuerRef: { group: "cert-manager.io", kind: "ClusterIssuer", name: "corp-ca" },
        dnsNames: ["val-webhook", "val-webhook.platform-vnode", "val-webhook.platform-vnode.svc"],
      }),
    );
    expect(certificate.dependencies).toEqual(["val-namespace"]);
  });

  test("the user's selector, narrowed by the exclusions; the failure policy from the arg", () => {
    const key = "vnode.loft.sh/isolation";
    const entry = (...isolation: object[]) =>
      expect.objectContaining({
        failurePolicy: "Ignore",
        namespaceSelector: {
          matchExpressions: [
            { key: "team", operator: "In", values: ["a", "b"] },
            { key: "sandbox-exempt", operator: "DoesNotExist" },
            NAME_NOT_IN("kube-node-lease", "kube-system", "platform-vnode"),
            ...isolation,
          ],
        },
      });
    expect(webhooks(podConfig("val", T.validating))).toEqual([
      entry({ key, operator: "DoesNotExist" }),
      entry({ key, operator: "In", values: ["per-namespace"] }),
      entry({ key, operator: "In", values: ["per-pod"] }),
      entry(
        { key, operator: "Exists" },
        { key, operator: "NotIn", values: ["per-namespace", "per-pod"] },
      ),
    ]);
    expect(
      (podConfig("val", T.validating).inputs as { metadata: { annotations: unknown } }).metadata
        .annotations,
    ).toEqual({ "cert-manager.io/inject-ca-from": "platform-vnode/val-webhook-tls" });
  });

  test("one mode: the webhook knows one class, the default mode is that mode", () => {
    expect(containerArgs(recorder.one("val", T.deployment)).slice(7)).toEqual([
      "--class",
      "per-namespace=sandbox",
      "--default-mode",
      "per-namespace",
      "--exclude-namespace",
      "platform-vnode",
      "--tenant-selector",
      '{"matchExpressions":[{"key":"team","operator":"In","values":["a","b"]},{"key":"sandbox-exempt","operator":"DoesNotExist"}]}',
    ]);
  });
});

describe("mutate only, cert-manager installed by the component", () => {
  beforeAll(() =>
    create("inst", {
      enforcement: { namespaceSelector: TENANTS, mode: EnforcementMode.Mutate },
      certManager: { install: true },
    }),
  );

  test("cert-manager is one remote component child, with its CRDs, in its own namespace", () => {
    const installed = recorder.one("inst", T.certManager);
    expect(installed.name).toBe("inst-cert-manager");
    expect(installed.inputs).toEqual({
      installCRDs: true,
      helmOptions: { name: "cert-manager", namespace: "cert-manager", createNamespace: true },
    });
    expect(installed.urn).toBe(
      `urn:pulumi:test::vnode-test::vnode:index:VNodeRuntime$${T.certManager}::inst-cert-manager`,
    );
    expect(recorder.byType("inst", T.validating).map((r) => r.name)).toEqual([
      "inst-namespace-guard-webhook",
    ]);
  });

  test("every issuer and certificate waits for cert-manager", () => {
    const deps = (name: string): string[] =>
      recorder.of("inst").find((r) => r.name === name)?.dependencies ?? ["<not registered>"];
    expect(deps("inst-webhook-selfsigned-issuer")).toEqual(["inst-cert-manager", "inst-namespace"]);
    expect(deps("inst-webhook-ca-certificate")).toEqual([
      "inst-cert-manager",
      "inst-namespace",
      "inst-webhook-selfsigned-issuer",
    ]);
    expect(deps("inst-webhook-ca-issuer")).toEqual([
      "inst-cert-manager",
      "inst-namespace",
      "inst-webhook-ca-certificate",
    ]);
    expect(deps("inst-webhook-certificate")).toEqual([
      "inst-cert-manager",
      "inst-namespace",
      "inst-webhook-ca-issuer",
    ]);
  });

  test("cert-manager's namespace is excluded too, so its pods start before the webhook can", () => {
    expect(webhooks(recorder.one("inst", T.mutating))).toEqual([
      expect.objectContaining({
        name: "per-namespace.mutate.vnode.loft.sh",
        failurePolicy: "Ignore",
        clientConfig: expect.objectContaining({
          service: expect.objectContaining({ path: "/mutate/per-namespace" }),
        }),
        namespaceSelector: {
          matchLabels: { tenant: "true" },
          matchExpressions: [
            NAME_NOT_IN("cert-manager", "kube-node-lease", "kube-system", "vnode-runtime"),
          ],
        },
      }),
    ]);
    expect(containerArgs(recorder.one("inst", T.deployment)).slice(11)).toEqual([
      "--exclude-namespace",
      "cert-manager",
      "--exclude-namespace",
      "vnode-runtime",
      "--tenant-selector",
      '{"matchLabels":{"tenant":"true"}}',
    ]);
  });
});

describe("install and issuerRef together, failure policy Fail for both", () => {
  beforeAll(() =>
    create("both", {
      enforcement: {
        namespaceSelector: TENANTS,
        mode: EnforcementMode.MutateAndValidate,
        mutateFailurePolicy: FailurePolicy.Fail,
        validateFailurePolicy: FailurePolicy.Fail,
      },
      certManager: { install: true, issuerRef: { name: "ext", group: "awspca.cert-manager.io" } },
    }),
  );

  test("the serving certificate uses the user's issuer and waits for cert-manager", () => {
    const certificate = recorder.one("both", T.certificate);
    expect((certificate.inputs as { spec: { issuerRef: unknown } }).spec.issuerRef).toEqual({
      group: "awspca.cert-manager.io",
      kind: "Issuer",
      name: "ext",
    });
    expect(certificate.dependencies).toEqual(["both-cert-manager", "both-namespace"]);
    expect(recorder.byType("both", T.issuer)).toEqual([]);
  });

  test("Fail applies to mutation and validation", () => {
    expect(
      [recorder.one("both", T.mutating), podConfig("both", T.validating)].map((r) =>
        webhooks(r).map((w) => w.failurePolicy),
      ),
    ).toEqual([["Fail"], ["Fail", "Fail", "Fail", "Fail"]]);
  });
});

test("without enforcement there is no webhook, certificate or cert-manager", async () => {
  await create("plain", {});
  expect(enforcementChildren("plain")).toEqual([]);
});

describe("secrets untouched", () => {
  beforeAll(() =>
    create("sec", {
      env: [{ name: "LICENSE_TOKEN", value: pulumi.secret("s3cr3t-token") }],
      enforcement: { namespaceSelector: TENANTS, mode: EnforcementMode.MutateAndValidate },
    }),
  );

  test("the agent's env Secret is still the only Secret, and still a Pulumi secret", () => {
    const [secret] = recorder.byType("sec", T.secret);
    expect(recorder.byType("sec", T.secret).map((r) => r.name)).toEqual(["sec-env"]);
    expect(containsSecret((secret.inputs as { stringData: unknown }).stringData)).toBe(true);
  });

  test("the webhook gets neither the agent's env nor any secret value", () => {
    const deployment = recorder.one("sec", T.deployment).inputs as {
      spec: { template: { spec: { containers: { env: unknown[] }[] } } };
    };
    expect(containsSecret(deployment)).toBe(false);
    expect(JSON.stringify(deployment)).not.toMatch(/s3cr3t-token|sec-agent-env/);
    expect(deployment.spec.template.spec.containers[0].env).toEqual([
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      {
        name: "NODE_OPTIONS",
        value: "--max-old-space-size=48 --max-semi-space-size=2 --expose-gc",
      },
    ]);
  });
});
