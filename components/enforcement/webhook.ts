/**
 * The webhook backend of tenancy enforcement: `vnode-agent webhook` as a Deployment of the agent
 * image (unprivileged: it touches no host file and never calls the API), its ServiceAccount,
 * PodDisruptionBudget and Service, and the Mutating/ValidatingWebhookConfigurations that route
 * tenant pods to it. The routes (paths and namespaceSelectors) come from webhookRoutes.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import {
  agentArgv,
  ALWAYS_EXCLUDED_NAMESPACES,
  ALWAYS_PLATFORM_GROUPS,
  LABEL_PREFIX,
  mutatingRoutes,
  POD_NAMESPACE_ENV,
  podCreateRules,
  validatingRoutes,
  WEBHOOK_HTTPS,
} from "vnode-contract";
import type { RuntimePlan } from "../defaults";
import {
  namespacedMeta,
  objectMeta,
  standardLabels,
  withUserAnnotations,
  withUserLabels,
} from "../labels";
import { mergeMaps } from "../validate/known";
import { ENFORCEMENT_DEFAULTS, type EnforcementPlan, type WebhookPlan } from "./plan";

/** Name of the webhook container. */
export const WEBHOOK_CONTAINER = "webhook";

/** Where the serving certificate's Secret is mounted (`tls.crt`, `tls.key`). */
export const WEBHOOK_TLS_DIR = "/etc/vnode-webhook/tls";

/** Port of the webhook Service; the API server calls `https://<svc>.<ns>.svc:443<path>`. */
export const WEBHOOK_SERVICE_PORT = 443;

/** cert-manager's cainjector copies the CA of this Certificate into the configurations. */
export const INJECT_CA_ANNOTATION = "cert-manager.io/inject-ca-from";

/** The webhook pods' immutable selector; `name` differs from the agent's so no selector mixes them. */
export function webhookSelectorLabels(name: string): Record<string, string> {
  return { "app.kubernetes.io/name": "vnode-webhook", "app.kubernetes.io/instance": name };
}

/** Labels of every webhook object: the standard ones, with the webhook's name and component. */
export function webhookLabels(name: string): Record<string, string> {
  return { ...webhookSelectorLabels(name), "app.kubernetes.io/component": "webhook" };
}

/** Both the webhook plan and the enforcement plan; throws when the backend is not the webhook. */
export function webhookPlan(plan: RuntimePlan): { e: EnforcementPlan; w: WebhookPlan } {
  const e = plan.enforcement;
  if (e?.webhook === undefined) {
    throw new Error("webhook builders need enforcement with backend webhook");
  }
  return { e, w: e.webhook };
}

/**
 * The webhook's command line: the classes per mode, the default mode, and the namespaces it leaves
 * alone on top of kube-system, kube-node-lease and its own (`POD_NAMESPACE`), which it adds itself;
 * with the namespace label guard, the tenant selector, the platform groups (without those it always
 * trusts) and the Pod Security level.
 */
export function webhookArgs(e: EnforcementPlan): string[] {
  const always: readonly string[] = ALWAYS_EXCLUDED_NAMESPACES;
  const trusted: readonly string[] = ALWAYS_PLATFORM_GROUPS;
  const guard = e.namespaceGuard;
  return agentArgv("webhook", {
    listen: { host: undefined, port: WEBHOOK_HTTPS.port },
    tlsCertFile: `${WEBHOOK_TLS_DIR}/tls.crt`,
    tlsKeyFile: `${WEBHOOK_TLS_DIR}/tls.key`,
    class: e.rules.classes,
    defaultMode: e.rules.defaultMode,
    excludeNamespace: e.rules.excludedNamespaces.filter((ns) => !always.includes(ns)),
    ...(guard !== undefined
      ? {
          tenantSelector: JSON.stringify(guard.tenantSelector),
          platformGroup: guard.platformGroups.filter((g) => !trusted.includes(g)),
          podSecurityLevel: guard.podSecurityLevel,
        }
      : {}),
  });
}

/** No token: the webhook never calls the Kubernetes API, so it needs no RBAC either. */
export function buildWebhookServiceAccount(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.core.v1.ServiceAccountArgs {
  const { w } = webhookPlan(plan);
  return {
    metadata: namespacedMeta(plan, w.name, namespace, webhookLabels(plan.name)),
    automountServiceAccountToken: false,
  };
}

export function buildWebhookDeployment(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.apps.v1.DeploymentArgs {
  const { e, w } = webhookPlan(plan);
  const selector = webhookSelectorLabels(plan.name);
  const probe = (path: string) => ({
    httpGet: { path, port: WEBHOOK_HTTPS.portName, scheme: "HTTPS" },
  });
  return {
    metadata: namespacedMeta(plan, w.name, namespace, webhookLabels(plan.name)),
    spec: {
      replicas: w.replicas,
      selector: { matchLabels: selector },
      // One new replica before an old one goes: admission never loses a server on a rollout.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: withUserLabels(plan, {
            ...standardLabels(plan.name),
            ...webhookLabels(plan.name),
          }),
          annotations: withUserAnnotations(plan),
        },
        spec: {
          serviceAccountName: w.name,
          priorityClassName: ENFORCEMENT_DEFAULTS.webhookPriorityClassName,
          automountServiceAccountToken: false,
          nodeSelector: { "kubernetes.io/os": "linux" },
          // Replicas on different nodes where there are several: one node down leaves one up.
          // ScheduleAnyway, so a one-node cluster still runs both.
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: { matchLabels: selector },
            },
          ],
          // Pod Security `restricted`: non-root, RuntimeDefault seccomp, no capability. fsGroup
          // makes the mounted key readable to that group only (mode 0440).
          securityContext: {
            runAsNonRoot: true,
            runAsUser: w.user,
            runAsGroup: w.user,
            fsGroup: w.user,
            seccompProfile: { type: "RuntimeDefault" },
          },
          // The agent's --shutdown-delay (5s) plus its drain (10s), with room to spare.
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: WEBHOOK_CONTAINER,
              image: plan.image,
              imagePullPolicy: "IfNotPresent",
              command: ["vnode-agent"],
              args: webhookArgs(e),
              env: [
                {
                  name: POD_NAMESPACE_ENV,
                  valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
                },
                { name: "NODE_OPTIONS", value: ENFORCEMENT_DEFAULTS.webhookNodeOptions },
              ],
              ports: [
                {
                  name: WEBHOOK_HTTPS.portName,
                  containerPort: WEBHOOK_HTTPS.port,
                  protocol: "TCP",
                },
              ],
              readinessProbe: {
                ...probe(WEBHOOK_HTTPS.readyz),
                periodSeconds: 5,
                timeoutSeconds: 2,
                failureThreshold: 2,
              },
              livenessProbe: {
                ...probe(WEBHOOK_HTTPS.healthz),
                initialDelaySeconds: 5,
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 3,
              },
              resources: w.resources,
              terminationMessagePolicy: "FallbackToLogsOnError",
              securityContext: {
                runAsNonRoot: true,
                privileged: false,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"] },
                readOnlyRootFilesystem: true,
              },
              volumeMounts: [{ name: "tls", mountPath: WEBHOOK_TLS_DIR, readOnly: true }],
            },
          ],
          // cert-manager writes and rotates the Secret; the webhook re-reads the files.
          volumes: [{ name: "tls", secret: { secretName: w.tlsName, defaultMode: 0o440 } }],
        },
      },
    },
  };
}

/** One replica must stay up through drains; a crash-looping one never blocks a drain. */
export function buildWebhookPodDisruptionBudget(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.policy.v1.PodDisruptionBudgetArgs {
  const { w } = webhookPlan(plan);
  return {
    metadata: namespacedMeta(plan, w.name, namespace, webhookLabels(plan.name)),
    spec: {
      minAvailable: 1,
      selector: { matchLabels: webhookSelectorLabels(plan.name) },
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    },
  };
}

export function buildWebhookService(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.core.v1.ServiceArgs {
  const { w } = webhookPlan(plan);
  return {
    metadata: namespacedMeta(plan, w.name, namespace, webhookLabels(plan.name)),
    spec: {
      type: "ClusterIP",
      selector: webhookSelectorLabels(plan.name),
      ports: [
        {
          name: WEBHOOK_HTTPS.portName,
          port: WEBHOOK_SERVICE_PORT,
          targetPort: WEBHOOK_HTTPS.portName,
          protocol: "TCP",
        },
      ],
    },
  };
}

/** Metadata of a configuration: the component's, plus the CA injection from the serving Certificate. */
export function configurationMeta(
  plan: RuntimePlan,
  w: WebhookPlan,
  namespace: pulumi.Input<string>,
): {
  name: pulumi.Input<string>;
  labels: pulumi.Input<Record<string, string>>;
  annotations: pulumi.Input<Record<string, pulumi.Input<string>>>;
} {
  const meta = objectMeta(plan, w.name, webhookLabels(plan.name));
  return {
    ...meta,
    annotations: mergeMaps(plan.annotations, {
      [INJECT_CA_ANNOTATION]: pulumi.interpolate`${namespace}/${w.tlsName}`,
    }) as pulumi.Input<Record<string, string>>,
  };
}

/** What every webhook entry shares: admission v1, no side effects, pod CREATE only, a short timeout. */
function webhookEntry(
  w: WebhookPlan,
  namespace: pulumi.Input<string>,
  path: string,
): {
  admissionReviewVersions: string[];
  sideEffects: string;
  timeoutSeconds: number;
  matchPolicy: string;
  rules: k8s.types.input.admissionregistration.v1.RuleWithOperations[];
  clientConfig: k8s.types.input.admissionregistration.v1.WebhookClientConfig;
} {
  return {
    admissionReviewVersions: ["v1"],
    sideEffects: "None",
    timeoutSeconds: w.timeoutSeconds,
    matchPolicy: "Equivalent",
    rules: podCreateRules().map((rule) => ({ ...rule, scope: "Namespaced" })),
    clientConfig: { service: { name: w.name, namespace, path, port: WEBHOOK_SERVICE_PORT } },
  };
}

/**
 * One entry per mode the pools offer, each for the namespaces of that mode (webhookRoutes.ts),
 * so the API server calls `/mutate/<mode>` and the webhook knows the class without reading the
 * namespace. Entry names are fully qualified, as the API requires.
 */
export function buildMutatingWebhookConfiguration(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.admissionregistration.v1.MutatingWebhookConfigurationArgs {
  const { e, w } = webhookPlan(plan);
  return {
    metadata: configurationMeta(plan, w, namespace),
    webhooks: mutatingRoutes(e.rules, e.tenantSelector).map((route) => ({
      name: `${route.mode}.mutate.${LABEL_PREFIX}`,
      ...webhookEntry(w, namespace, route.path),
      failurePolicy: e.failurePolicy.mutate,
      // The webhook only sets an unset class; nothing another webhook does later needs a rerun.
      reinvocationPolicy: "Never",
      namespaceSelector: route.namespaceSelector,
    })),
  };
}

/**
 * One entry per case of the namespace's isolation label (webhookRoutes.ts): unlabelled, each
 * mode, and a value that is no mode. Exactly one matches any tenant namespace, so the webhook is
 * called once per pod and learns the namespace's mode from the path. Applied after the
 * Deployment is ready (dependsOn), so the new paths are served before the API server calls them.
 */
export function buildValidatingWebhookConfiguration(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.admissionregistration.v1.ValidatingWebhookConfigurationArgs {
  const { e, w } = webhookPlan(plan);
  return {
    metadata: configurationMeta(plan, w, namespace),
    webhooks: validatingRoutes(e.rules, e.tenantSelector).map((route) => ({
      name: `${route.name}.validate.${LABEL_PREFIX}`,
      ...webhookEntry(w, namespace, route.path),
      failurePolicy: e.failurePolicy.validate,
      namespaceSelector: route.namespaceSelector,
    })),
  };
}
