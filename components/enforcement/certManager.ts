/**
 * TLS of the enforcement webhook through cert-manager: optionally cert-manager itself (the
 * `@pulumi/kubernetes-cert-manager` component, CRDs included), a self-signed CA chain unless the
 * user names an issuer, and the serving Certificate for the webhook Service's DNS names. The key
 * never passes through Pulumi: cert-manager writes it into the Secret the Deployment mounts.
 */
import type * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import type * as certManager from "@pulumi/kubernetes-cert-manager";
import type { RuntimePlan } from "../defaults";
import { namespacedMeta, standardLabels, withUserLabels } from "../labels";
import { webhookPlan, webhookSelectorLabels } from "./webhook";

/** Type token of the remote `CertManager` component. */
export const CERT_MANAGER_TYPE = "kubernetes-cert-manager:index:CertManager";

const API_VERSION = "cert-manager.io/v1";

/** The CA rarely rotates: the serving Secret's own `ca.crt` is what gets injected, so it may. */
export const CA_DURATION = "26280h";
/** The serving certificate: 90 days, renewed 15 days before expiry; the webhook re-reads it. */
export const SERVING_DURATION = "2160h";
export const SERVING_RENEW_BEFORE = "360h";

/** A fresh P-256 key on every issuance. */
const PRIVATE_KEY = { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" };

/**
 * cert-manager with its CRDs, by Helm, into its own namespace. Release name `cert-manager`, so its
 * objects get the names cert-manager's documentation uses.
 */
export function buildCertManager(plan: RuntimePlan): certManager.CertManagerArgs {
  const { w } = webhookPlan(plan);
  return {
    installCRDs: true,
    helmOptions: {
      name: "cert-manager",
      namespace: w.certManager.namespace,
      createNamespace: true,
    },
  };
}

function labels(plan: RuntimePlan): Record<string, string> {
  return { ...webhookSelectorLabels(plan.name), "app.kubernetes.io/component": "webhook-tls" };
}

/** Signs the CA certificate only. */
export function buildSelfSignedIssuer(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.apiextensions.CustomResourceArgs {
  const { w } = webhookPlan(plan);
  if (w.issuer.source !== "self-signed") {
    throw new Error("buildSelfSignedIssuer: certManager.issuerRef is set");
  }
  return {
    apiVersion: API_VERSION,
    kind: "Issuer",
    metadata: namespacedMeta(plan, w.issuer.selfSignedIssuerName, namespace, labels(plan)),
    spec: { selfSigned: {} },
  };
}

/** The webhook's own CA, valid for the webhook only (nothing else trusts it). */
export function buildCaCertificate(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.apiextensions.CustomResourceArgs {
  const { w } = webhookPlan(plan);
  if (w.issuer.source !== "self-signed") {
    throw new Error("buildCaCertificate: certManager.issuerRef is set");
  }
  return {
    apiVersion: API_VERSION,
    kind: "Certificate",
    metadata: namespacedMeta(plan, w.issuer.caName, namespace, labels(plan)),
    spec: {
      isCA: true,
      commonName: "vnode enforcement webhook CA",
      secretName: w.issuer.caName,
      duration: CA_DURATION,
      privateKey: PRIVATE_KEY,
      issuerRef: {
        group: "cert-manager.io",
        kind: "Issuer",
        name: w.issuer.selfSignedIssuerName,
      },
    },
  };
}

/** Issues the serving certificate from the CA's Secret. */
export function buildCaIssuer(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.apiextensions.CustomResourceArgs {
  const { w } = webhookPlan(plan);
  if (w.issuer.source !== "self-signed") {
    throw new Error("buildCaIssuer: certManager.issuerRef is set");
  }
  return {
    apiVersion: API_VERSION,
    kind: "Issuer",
    metadata: namespacedMeta(plan, w.issuer.caName, namespace, labels(plan)),
    spec: { ca: { secretName: w.issuer.caName } },
  };
}

/** The webhook Service's serving certificate, from the CA Issuer or the user's issuer. */
export function buildServingCertificate(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.apiextensions.CustomResourceArgs {
  const { w } = webhookPlan(plan);
  const issuerRef =
    w.issuer.source === "self-signed"
      ? { group: "cert-manager.io", kind: "Issuer", name: w.issuer.caName }
      : { group: w.issuer.group, kind: w.issuer.kind, name: w.issuer.name };
  return {
    apiVersion: API_VERSION,
    kind: "Certificate",
    metadata: namespacedMeta(plan, w.tlsName, namespace, labels(plan)),
    spec: {
      secretName: w.tlsName,
      // The Secret carries the component's labels too, so it is found with the rest.
      secretTemplate: {
        labels: withUserLabels(plan, { ...standardLabels(plan.name), ...labels(plan) }),
      },
      dnsNames: [...w.dnsNames],
      usages: ["digital signature", "server auth"],
      duration: SERVING_DURATION,
      renewBefore: SERVING_RENEW_BEFORE,
      privateKey: PRIVATE_KEY,
      issuerRef,
    },
  };
}
