/** Registered objects as the manifests written to out/<stack>/: shape, secrets, order, file names. */
import { SECRET_PLACEHOLDER, SECRET_SIG, SECRET_SIG_KEY } from "./secrets";

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** Apply order, as `kubectl apply -f out/<stack>` should see the files. */
const KIND_ORDER = [
  "Namespace",
  "ServiceAccount",
  "Secret",
  "ClusterRole",
  "ClusterRoleBinding",
  "Role",
  "RoleBinding",
  "RuntimeClass",
  "DaemonSet",
  "PodMonitor",
  // Tenancy enforcement: TLS first, then the webhook server, then what sends it pods.
  "Issuer",
  "Certificate",
  "Deployment",
  "PodDisruptionBudget",
  "Service",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionPolicyBinding",
  "MutatingAdmissionPolicy",
  "MutatingAdmissionPolicyBinding",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
];

/** A registered object's inputs as a manifest: apiVersion/kind/metadata first, secrets redacted. */
export function toManifest(inputs: Record<string, unknown>): Manifest {
  const clean = unwrapSecrets(inputs) as Record<string, unknown>;
  const { apiVersion, kind, metadata, ...rest } = clean;
  return { apiVersion, kind, metadata, ...rest } as Manifest;
}

function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(unwrapSecrets);
  }
  if (typeof value === "object" && value !== null) {
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIG_KEY] === SECRET_SIG) {
      // Never write a secret's plaintext to disk.
      return SECRET_PLACEHOLDER;
    }
    return Object.fromEntries(
      Object.entries(record)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, unwrapSecrets(v)]),
    );
  }
  return value;
}

/** Stable apply order: by kind (namespaces first, workloads last), then name. */
export function sortManifests(manifests: Manifest[]): Manifest[] {
  const rank = (kind: string): number => {
    const i = KIND_ORDER.indexOf(kind);
    return i === -1 ? KIND_ORDER.length : i;
  };
  return [...manifests].sort(
    (a, b) =>
      rank(a.kind) - rank(b.kind) ||
      a.kind.localeCompare(b.kind) ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
}

export function fileName(index: number, manifest: Manifest): string {
  return `${String(index + 1).padStart(2, "0")}-${manifest.kind.toLowerCase()}-${manifest.metadata.name}.yaml`;
}
