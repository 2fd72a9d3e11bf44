/** Schema validation of manifests against the Kubernetes OpenAPI schema (kubernetes-models). */
import type { Manifest } from "./manifests";

/** Model packages of custom resources kubernetes-models does not cover. */
const CRD_MODEL_PACKAGES: Record<string, string> = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "cert-manager.io": "@kubernetes-models/cert-manager",
};

type ModelClass = new (data: unknown) => { validate(): void };

/** The kubernetes-models class for an apiVersion/kind, or a reason why there is none. */
async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | string> {
  const slash = apiVersion.indexOf("/");
  const group = slash === -1 ? "" : apiVersion.slice(0, slash);
  const modulePath =
    group in CRD_MODEL_PACKAGES
      ? `${CRD_MODEL_PACKAGES[group]}/${apiVersion}`
      : `kubernetes-models/${apiVersion}`;
  let module: Record<string, unknown>;
  try {
    // ESM-only packages: a real dynamic import (tsx keeps it), never a require.
    module = (await import(modulePath)) as Record<string, unknown>;
  } catch {
    return `no schema is known for apiVersion ${apiVersion} (module ${modulePath} not found)`;
  }
  const model = module[kind];
  return typeof model === "function"
    ? (model as ModelClass)
    : `no schema is known for ${apiVersion} ${kind}`;
}

/** Schema problems, one sentence per invalid object, naming it. Empty when all are valid. */
export async function validateManifests(
  manifests: { file: string; manifest: Manifest }[],
): Promise<string[]> {
  const problems: string[] = [];
  for (const { file, manifest } of manifests) {
    const label = `${manifest.kind ?? "<no kind>"} ${JSON.stringify(manifest.metadata?.name ?? "<no name>")} (${file})`;
    if (typeof manifest.apiVersion !== "string" || typeof manifest.kind !== "string") {
      problems.push(`${label}: apiVersion and kind are required.`);
      continue;
    }
    if (typeof manifest.metadata?.name !== "string" || manifest.metadata.name === "") {
      problems.push(`${label}: metadata.name is required.`);
      continue;
    }
    const found = await modelFor(manifest.apiVersion, manifest.kind);
    if (typeof found === "string") {
      problems.push(`${label}: ${found}.`);
      continue;
    }
    try {
      new found(structuredClone(manifest)).validate();
    } catch (error) {
      problems.push(`${label} is invalid: ${(error as Error).message}.`);
    }
  }
  return problems;
}
