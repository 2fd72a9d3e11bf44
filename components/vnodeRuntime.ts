import * as pulumi from "@pulumi/pulumi";
import * as dockerBuild from "@pulumi/docker-build";
import * as k8s from "@pulumi/kubernetes";
import * as certManager from "@pulumi/kubernetes-cert-manager";
import {
  buildAgentImage,
  hostBuildEnvironment,
  pinnedImageRef,
  planAgentImageBuild,
} from "./agentImage";
import {
  AgentConfinement,
  EnforcementBackend,
  IsolationMode,
  MetricsMode,
  RolloutWait,
  VNodeRuntimeArgs,
} from "./args";
import { buildDaemonSet } from "./daemonSet";
import { KnownNamespacePlan, RuntimePlan, UNRESOLVED_NAMESPACE, resolveArgs } from "./defaults";
import {
  buildCaCertificate,
  buildCaIssuer,
  buildCertManager,
  buildSelfSignedIssuer,
  buildServingCertificate,
} from "./enforcement/certManager";
import {
  buildMutatingAdmissionPolicy,
  buildMutatingAdmissionPolicyBinding,
  buildValidatingAdmissionPolicy,
  buildValidatingAdmissionPolicyBinding,
  mutatingPolicyClasses,
} from "./enforcement/policy";
import {
  buildMutatingWebhookConfiguration,
  buildValidatingWebhookConfiguration,
  buildWebhookDeployment,
  buildWebhookPodDisruptionBudget,
  buildWebhookService,
  buildWebhookServiceAccount,
  webhookPlan,
} from "./enforcement/webhook";
import {
  buildNamespaceGuardPolicy,
  buildNamespaceGuardPolicyBinding,
  buildNamespaceMutatingWebhookConfiguration,
  buildNamespaceValidatingWebhookConfiguration,
  buildPodSecurityPolicy,
  buildPodSecurityPolicyBinding,
} from "./enforcement/namespaceGuard";
import { buildEnvSecret } from "./envSecret";
import { buildPodMonitor } from "./metrics";
import { buildNamespace } from "./namespace";
import {
  buildAgentNodePolicy,
  buildAgentNodePolicyBinding,
  buildClusterRole,
  buildClusterRoleBinding,
  buildRole,
  buildRoleBinding,
  buildServiceAccount,
} from "./rbac";
import {
  daemonSetResourceName,
  legacyDaemonSetResourceNames,
  legacyRuntimeClassResourceNames,
  runtimeClassResourceName,
} from "./names";
import { buildRuntimeClass } from "./runtimeClass";
import { validateArgs } from "./validate";
import { checksPassed, isKnownValue } from "./validate/known";

/**
 * Objects whose Kubernetes name is fixed by the args and that have a field the API server refuses
 * to change (422 "field is immutable"): a change of that field must replace the object, and since
 * the replacement has the same name it cannot exist beside the old one, so the old one goes first.
 * - RuntimeClass `handler` (node.k8s.io/v1 validation: ValidateRuntimeClassUpdate). While it is
 *   replaced (seconds), new pods naming the class are refused by the RuntimeClass admission
 *   plugin; running pods are not affected.
 * - (Cluster)RoleBinding `roleRef` (rbac/v1: "cannot change roleRef"). The agent loses its
 *   permissions for the moment of the replacement and retries.
 * The DaemonSets' `spec.selector` is immutable too, but it is derived from the DaemonSet's own name
 * (component and pool, see labels.ts `selectorLabels`), so it never changes while the name stays:
 * a new selector comes with a new DaemonSet, created before the old one is deleted, which the
 * agents hand over (see agent/src/daemon/shutdown.ts). Deleting it first would uninstall the
 * runtime from every node of the pool at once.
 */
const FIXED_NAME_IMMUTABLE = {
  runtimeClass: { replaceOnChanges: ["handler"], deleteBeforeReplace: true },
  roleBinding: { replaceOnChanges: ["roleRef"], deleteBeforeReplace: true },
} satisfies Record<string, pulumi.CustomResourceOptions>;

/**
 * `rollout.wait`: with `ready` the Kubernetes provider's DaemonSet await (pulumi-kubernetes >= 4.12,
 * kstatus: every scheduled pod updated and ready) may take `timeoutSeconds` instead of its default
 * 10 minutes; with `none` the DaemonSet carries `pulumi.com/skipAwait: "true"` (see daemonSet.ts)
 * and no timeout applies.
 */
function rolloutOptions(plan: RuntimePlan): pulumi.CustomResourceOptions {
  if (plan.rollout.wait !== RolloutWait.Ready) {
    return {};
  }
  const timeout = `${plan.rollout.timeoutSeconds}s`;
  return { customTimeouts: { create: timeout, update: timeout } };
}

/**
 * Makes every child (not the component itself) also depend on `passed`: the args checked on
 * resolution (validate/known.ts `checksPassed`).
 */
function waitFor(passed: pulumi.Output<pulumi.Resource[]>): pulumi.ResourceTransformation {
  return ({ type, props, opts }) => {
    if (type === "vnode:index:VNodeRuntime") {
      return undefined;
    }
    // Resources pass through Outputs as they are (output.ts outputRec).
    const dependsOn = pulumi
      .all([opts.dependsOn ?? [], passed])
      .apply(([own]) => [own].flat() as pulumi.Resource[]);
    return { props, opts: { ...opts, dependsOn } };
  };
}

/** A builder's args for the runtime namespace's value; see {@link buildInNamespace}. */
type InNamespace = <T extends object>(
  build: (plan: KnownNamespacePlan) => T,
  plainFields?: readonly string[],
) => T;

/** A CustomResource's type token is made of these, so they must be plain. */
const CUSTOM_RESOURCE_TYPE = ["apiVersion", "kind"];

/**
 * The args of a builder that reads the runtime namespace's value. A known namespace builds them
 * now. A namespace from another resource builds them once it resolves, from the plan resolved for
 * that value (`planAt`), and hands each top-level field over as an Output (a resource's args must
 * be an object now); `plainFields` (known without the namespace) are taken from a build with
 * `UNRESOLVED_NAMESPACE`, which builds the same object but for the namespace-derived values.
 */
export function buildInNamespace<T extends object>(
  namespace: pulumi.Input<string>,
  planAt: (namespace: string) => KnownNamespacePlan,
  build: (plan: KnownNamespacePlan) => T,
  plainFields: readonly string[] = [],
): T {
  if (isKnownValue(namespace)) {
    return build(planAt(namespace as string));
  }
  const shape = build(planAt(UNRESOLVED_NAMESPACE)) as Record<string, unknown>;
  const built = pulumi
    .output(namespace)
    .apply((known) => pulumi.output(build(planAt(known)) as Record<string, unknown>));
  return Object.fromEntries(
    Object.keys(shape).map((key) => [
      key,
      plainFields.includes(key) ? shape[key] : built.apply((args) => args[key]),
    ]),
  ) as T;
}

/**
 * Installs the vNode sandboxing container runtime on a Kubernetes cluster: a node agent DaemonSet
 * per node pool that registers vNode's runtime handler in containerd, its RBAC, and one
 * RuntimeClass per isolation mode in use, which pins pods to nodes where the runtime is verified
 * ready in that mode. Optionally builds and pushes the agent image from this repository, and
 * enforces vNode on tenant namespaces at admission (an admission webhook with TLS from cert-manager,
 * or CEL admission policies).
 */
export class VNodeRuntime extends pulumi.ComponentResource {
  /** Namespace of the agent. */
  public readonly namespace!: pulumi.Output<string>;
  /** RuntimeClass name per isolation mode in use, e.g. `{ "per-namespace": "vnode" }`. */
  public readonly runtimeClassNames!: pulumi.Output<{ [mode: string]: string }>;
  /** Names of the agent DaemonSets, one per pool. */
  public readonly daemonSetNames!: pulumi.Output<string[]>;
  /** Isolation modes in use (`per-namespace`, `per-pod`). */
  public readonly isolationModes!: pulumi.Output<string[]>;
  /** `VNODE_PER_POD` of the nodes as a boolean when every pool uses one mode; unset when pools mix modes. */
  public readonly vnodePerPod!: pulumi.Output<boolean | undefined>;
  /**
   * The image reference the agent DaemonSets run: `agentImage.ref`, or with `agentImage.build` the
   * pushed image pinned by digest (`<registry>/<repository>:<tag>@sha256:...`).
   */
  public readonly agentImageRef!: pulumi.Output<string>;

  constructor(name: string, args: VNodeRuntimeArgs, opts?: pulumi.ComponentResourceOptions) {
    // Before super(): invalid input registers nothing, not even the component. Inputs that are
    // Outputs come back as Outputs that check the value once it resolves.
    const { args: checked, pending } = validateArgs(name, args);
    const passed = checksPassed(pending);
    // Also before super(): the default tag is read from the agent package and may fail.
    const build = args.agentImage.build ?? undefined;
    const imageBuild =
      build !== undefined
        ? // validateArgs made vnodeImage required with a build.
          planAgentImageBuild(build, args.vnodeImage!, hostBuildEnvironment())
        : undefined;
    super(
      "vnode:index:VNodeRuntime",
      name,
      {},
      passed === undefined
        ? opts
        : { ...opts, transformations: [...(opts?.transformations ?? []), waitFor(passed)] },
    );
    const parent = { parent: this };

    let image = checked.agentImage.ref ?? undefined;
    if (imageBuild !== undefined) {
      const agentImage = new dockerBuild.Image(`${name}-agent-image`, buildAgentImage(imageBuild), {
        parent: this,
        // Nodes may still run this image (a DaemonSet being replaced, another stack using the
        // ref): never delete it from the registry with the resource.
        retainOnDelete: true,
      });
      image = pinnedImageRef(imageBuild, agentImage.digest);
    }
    const plan = resolveArgs(name, checked, image);
    // Builders that read the namespace's value (a user name in CEL, exclusions, DNS names).
    const inNamespace: InNamespace = (build, plainFields) =>
      buildInNamespace(
        plan.namespace,
        (known) => resolveArgs(name, { ...checked, namespace: known }, image) as KnownNamespacePlan,
        build,
        plainFields,
      );

    const ns = plan.createNamespace
      ? new k8s.core.v1.Namespace(`${name}-namespace`, buildNamespace(plan), {
          parent: this,
          ...(plan.retainNamespace ? { retainOnDelete: true } : {}),
        })
      : undefined;
    // Through the Namespace's output, so namespaced children wait for it.
    const namespace = ns !== undefined ? ns.metadata.name : pulumi.output(plan.namespace);

    const serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-service-account`,
      buildServiceAccount(plan, namespace),
      parent,
    );
    const clusterRole = new k8s.rbac.v1.ClusterRole(
      `${name}-cluster-role`,
      buildClusterRole(plan),
      parent,
    );
    const clusterRoleBinding = new k8s.rbac.v1.ClusterRoleBinding(
      `${name}-cluster-role-binding`,
      buildClusterRoleBinding(plan, namespace),
      { parent: this, dependsOn: [clusterRole], ...FIXED_NAME_IMMUTABLE.roleBinding },
    );
    // The policy names the agent's ServiceAccount by its user name, which holds the namespace.
    if (plan.agentConfinement !== AgentConfinement.None) {
      const policy = new k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
        `${name}-agent-node-policy`,
        inNamespace((known) => buildAgentNodePolicy(known)!),
        parent,
      );
      new k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
        `${name}-agent-node-policy-binding`,
        buildAgentNodePolicyBinding(plan),
        { parent: this, dependsOn: [policy] },
      );
    }
    const role = new k8s.rbac.v1.Role(`${name}-role`, buildRole(plan, namespace), parent);
    const roleBinding = new k8s.rbac.v1.RoleBinding(
      `${name}-role-binding`,
      buildRoleBinding(plan, namespace),
      { parent: this, dependsOn: [role], ...FIXED_NAME_IMMUTABLE.roleBinding },
    );
    const envSecret =
      plan.envSecret !== undefined
        ? new k8s.core.v1.Secret(
            `${name}-env`,
            buildEnvSecret(plan, plan.envSecret, namespace),
            parent,
          )
        : undefined;

    // The agent starts only once it may call the API and read its env.
    const agentDependencies: pulumi.Resource[] = [serviceAccount, clusterRoleBinding, roleBinding];
    if (envSecret !== undefined) {
      agentDependencies.push(envSecret);
    }
    const daemonSets = plan.pools.map(
      (pool) =>
        new k8s.apps.v1.DaemonSet(
          daemonSetResourceName(pool.daemonSetName),
          buildDaemonSet(plan, pool, namespace),
          {
            parent: this,
            dependsOn: agentDependencies,
            aliases: legacyDaemonSetResourceNames(name, pool.poolArg).map((old) => ({ name: old })),
            ...rolloutOptions(plan),
          },
        ),
    );
    const modes = plan.runtimeClasses.map((runtimeClass) => runtimeClass.isolationMode);
    const runtimeClasses = plan.runtimeClasses.map(
      (runtimeClass) =>
        new k8s.node.v1.RuntimeClass(
          runtimeClassResourceName(name, runtimeClass.name),
          buildRuntimeClass(plan, runtimeClass),
          {
            parent: this,
            aliases: legacyRuntimeClassResourceNames(name, runtimeClass.isolationMode, modes).map(
              (old) => ({ name: old }),
            ),
            ...FIXED_NAME_IMMUTABLE.runtimeClass,
          },
        ),
    );
    if (plan.enforcement?.backend === EnforcementBackend.Webhook) {
      createWebhookEnforcement(this, plan, inNamespace, namespace, runtimeClasses);
    } else if (plan.enforcement?.backend === EnforcementBackend.AdmissionPolicy) {
      createPolicyEnforcement(this, plan, inNamespace, runtimeClasses);
    }
    if (plan.metrics.mode === MetricsMode.PodMonitor) {
      new k8s.apiextensions.CustomResource(
        `${name}-pod-monitor`,
        buildPodMonitor(plan, namespace),
        parent,
      );
    }

    this.namespace = namespace;
    // From the children's outputs, so a consumer of these names depends on the objects.
    this.runtimeClassNames = pulumi
      .all(runtimeClasses.map((runtimeClass) => runtimeClass.metadata.name))
      .apply((names) => Object.fromEntries(modes.map((mode, i) => [mode, names[i]])));
    this.daemonSetNames = pulumi.all(daemonSets.map((daemonSet) => daemonSet.metadata.name));
    this.isolationModes = pulumi.output([...modes]);
    this.vnodePerPod = pulumi.output(
      modes.length === 1 ? modes[0] === IsolationMode.PerPod : undefined,
    );
    this.agentImageRef = pulumi.output(plan.image);
    this.registerOutputs({
      namespace: this.namespace,
      runtimeClassNames: this.runtimeClassNames,
      daemonSetNames: this.daemonSetNames,
      isolationModes: this.isolationModes,
      vnodePerPod: this.vnodePerPod,
      agentImageRef: this.agentImageRef,
    });
  }
}

/**
 * The webhook backend, in dependency order: cert-manager (optional), the CA chain (unless the user
 * names an issuer), the serving Certificate, the Deployment that mounts its Secret, and last the
 * webhook configurations, so the API server only calls a webhook that serves with a certificate
 * it trusts and only routes pods to RuntimeClasses that exist. `pulumi destroy` reverses the
 * order: the configurations go before the server.
 */
function createWebhookEnforcement(
  parent: pulumi.ComponentResource,
  plan: RuntimePlan,
  inNamespace: InNamespace,
  namespace: pulumi.Output<string>,
  runtimeClasses: pulumi.Resource[],
): void {
  const { e, w } = webhookPlan(plan);
  const name = plan.name;
  const installed = w.certManager.install
    ? [
        new certManager.CertManager(`${name}-cert-manager`, inNamespace(buildCertManager), {
          parent,
        }),
      ]
    : [];
  let issuer: pulumi.Resource[] = installed;
  if (w.issuer.source === "self-signed") {
    const selfSigned = new k8s.apiextensions.CustomResource(
      `${name}-webhook-selfsigned-issuer`,
      inNamespace((p) => buildSelfSignedIssuer(p, namespace), CUSTOM_RESOURCE_TYPE),
      { parent, dependsOn: installed },
    );
    const ca = new k8s.apiextensions.CustomResource(
      `${name}-webhook-ca-certificate`,
      inNamespace((p) => buildCaCertificate(p, namespace), CUSTOM_RESOURCE_TYPE),
      { parent, dependsOn: [...installed, selfSigned] },
    );
    const caIssuer = new k8s.apiextensions.CustomResource(
      `${name}-webhook-ca-issuer`,
      inNamespace((p) => buildCaIssuer(p, namespace), CUSTOM_RESOURCE_TYPE),
      { parent, dependsOn: [...installed, ca] },
    );
    issuer = [...installed, caIssuer];
  }
  const certificate = new k8s.apiextensions.CustomResource(
    `${name}-webhook-certificate`,
    inNamespace((p) => buildServingCertificate(p, namespace), CUSTOM_RESOURCE_TYPE),
    { parent, dependsOn: issuer },
  );
  const serviceAccount = new k8s.core.v1.ServiceAccount(
    `${name}-webhook-service-account`,
    inNamespace((p) => buildWebhookServiceAccount(p, namespace)),
    { parent },
  );
  const deployment = new k8s.apps.v1.Deployment(
    `${name}-webhook`,
    inNamespace((p) => buildWebhookDeployment(p, namespace)),
    { parent, dependsOn: [serviceAccount, certificate] },
  );
  new k8s.policy.v1.PodDisruptionBudget(
    `${name}-webhook-pdb`,
    inNamespace((p) => buildWebhookPodDisruptionBudget(p, namespace)),
    { parent },
  );
  const service = new k8s.core.v1.Service(
    `${name}-webhook-service`,
    inNamespace((p) => buildWebhookService(p, namespace)),
    { parent },
  );
  const serving = [deployment, service, certificate, ...runtimeClasses];
  if (e.mutate) {
    new k8s.admissionregistration.v1.MutatingWebhookConfiguration(
      `${name}-mutating-webhook`,
      inNamespace((p) => buildMutatingWebhookConfiguration(p, namespace)),
      { parent, dependsOn: serving },
    );
  }
  if (e.validate) {
    new k8s.admissionregistration.v1.ValidatingWebhookConfiguration(
      `${name}-validating-webhook`,
      inNamespace((p) => buildValidatingWebhookConfiguration(p, namespace)),
      { parent, dependsOn: serving },
    );
  }
  if (e.namespaceGuard !== undefined) {
    new k8s.admissionregistration.v1.ValidatingWebhookConfiguration(
      `${name}-namespace-guard-webhook`,
      inNamespace((p) => buildNamespaceValidatingWebhookConfiguration(p, namespace)),
      { parent, dependsOn: serving },
    );
    if (e.namespaceGuard.podSecurityLevel !== undefined) {
      new k8s.admissionregistration.v1.MutatingWebhookConfiguration(
        `${name}-namespace-pod-security-webhook`,
        inNamespace((p) => buildNamespaceMutatingWebhookConfiguration(p, namespace)),
        { parent, dependsOn: serving },
      );
    }
  }
}

/** The AdmissionPolicy backend: each policy, then its binding (which switches it on). */
function createPolicyEnforcement(
  parent: pulumi.ComponentResource,
  plan: RuntimePlan,
  inNamespace: InNamespace,
  runtimeClasses: pulumi.Resource[],
): void {
  const e = plan.enforcement;
  if (e === undefined) {
    return;
  }
  const name = plan.name;
  if (e.validate) {
    const policy = new k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
      `${name}-validating-policy`,
      inNamespace(buildValidatingAdmissionPolicy),
      { parent },
    );
    new k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
      `${name}-validating-policy-binding`,
      inNamespace(buildValidatingAdmissionPolicyBinding),
      { parent, dependsOn: [policy, ...runtimeClasses] },
    );
  }
  if (e.mutate) {
    const { Policy, Binding } = mutatingPolicyClasses(k8s, e.mutatingPolicyApiVersion);
    const policy = new Policy(
      `${name}-mutating-policy`,
      inNamespace(buildMutatingAdmissionPolicy),
      {
        parent,
      },
    );
    new Binding(
      `${name}-mutating-policy-binding`,
      inNamespace(buildMutatingAdmissionPolicyBinding),
      {
        parent,
        dependsOn: [policy, ...runtimeClasses],
      },
    );
  }
  if (e.namespaceGuard !== undefined) {
    const guard = new k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
      `${name}-namespace-guard-policy`,
      inNamespace(buildNamespaceGuardPolicy),
      { parent },
    );
    new k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
      `${name}-namespace-guard-policy-binding`,
      inNamespace(buildNamespaceGuardPolicyBinding),
      { parent, dependsOn: [guard] },
    );
    if (e.namespaceGuard.podSecurityLevel !== undefined) {
      const { Policy, Binding } = mutatingPolicyClasses(k8s, e.mutatingPolicyApiVersion);
      const policy = new Policy(
        `${name}-namespace-pod-security-policy`,
        inNamespace(buildPodSecurityPolicy),
        { parent },
      );
      new Binding(
        `${name}-namespace-pod-security-policy-binding`,
        inNamespace(buildPodSecurityPolicyBinding),
        { parent, dependsOn: [policy] },
      );
    }
  }
}
