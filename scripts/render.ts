/**
 * Offline render: runs the stack program (index.ts) for one stack under Pulumi's mock runtime,
 * writes every Kubernetes object it would create as YAML under out/<stack>/, and validates each
 * against the Kubernetes OpenAPI schema (kubernetes-models). No Pulumi CLI, cluster or network.
 *
 *   npm run render                       # stack dev
 *   npm run render -- --stack ci         # another stack (Pulumi.ci.yaml)
 *   npm run render -- --out /tmp/x       # write elsewhere
 *   npm run render -- --check out/dev    # only validate YAML files already in a directory
 *
 * Exit codes: 0 valid, 1 invalid config or objects, 2 usage error or unknown stack.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";

const ROOT = path.resolve(__dirname, "..");
const SECRET_PLACEHOLDER = "[secret]";
/** Pulumi's wire marker of a secret value, as mock inputs carry it. */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

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

/** Model packages of custom resources kubernetes-models does not cover. */
const CRD_MODEL_PACKAGES: Record<string, string> = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "cert-manager.io": "@kubernetes-models/cert-manager",
};

/**
 * The digest docker-build reports once it pushed the agent image (`agentImage.build`). Offline
 * nothing is built or pushed, so the DaemonSets get this marked placeholder; `pulumi up` pins the
 * real digest.
 */
export const OFFLINE_IMAGE_DIGEST = `sha256:${"0".repeat(64)}`;

export class UsageError extends Error {}
export class RenderError extends Error {}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

interface Options {
  stack: string;
  out: string | undefined;
  check: string | undefined;
}

export function parseArgs(argv: string[]): Options {
  const options: Options = { stack: "dev", out: undefined, check: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === "--stack" || flag === "--out" || flag === "--check") {
      if (value === undefined || value.startsWith("--")) {
        throw new UsageError(`${flag} needs a value.`);
      }
      options[flag.slice(2) as keyof Options] = value;
      i++;
    } else {
      throw new UsageError(
        `unknown argument ${JSON.stringify(flag)}; allowed: --stack <name>, --out <dir>, --check <dir>.`,
      );
    }
  }
  return options;
}

interface ConfigDeclaration {
  type?: string;
  items?: { type: string };
  default?: unknown;
}

/**
 * The config the Pulumi CLI would hand the program: the stack file's values, Pulumi.yaml's defaults
 * for unset keys, declared types checked. Encrypted values (`secure:`) cannot be decrypted
 * offline; they become a placeholder and are marked secret.
 */
export function stackConfig(
  root: string,
  stack: string,
): { project: string; config: Record<string, string>; secretKeys: string[] } {
  const project = YAML.parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as {
    name: string;
    config?: Record<string, ConfigDeclaration>;
  };
  const stackFile = path.join(root, `Pulumi.${stack}.yaml`);
  if (!/^[A-Za-z0-9._-]+$/.test(stack) || !fs.existsSync(stackFile)) {
    const known = fs
      .readdirSync(root)
      .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
      .filter((name): name is string => name !== undefined)
      .sort();
    throw new UsageError(
      `unknown stack ${JSON.stringify(stack)}: there is no Pulumi.${stack}.yaml next to Pulumi.yaml; known stacks: ${known.join(", ")}.`,
    );
  }
  const values =
    ((YAML.parse(fs.readFileSync(stackFile, "utf8")) ?? {}) as { config?: Record<string, unknown> })
      .config ?? {};
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [rawKey, raw] of Object.entries(values)) {
    const key = rawKey.includes(":") ? rawKey : `${project.name}:${rawKey}`;
    let secret = false;
    const value = redactSecure(raw, () => (secret = true));
    config[key] =
      typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
    if (secret) {
      secretKeys.push(key);
    }
  }
  for (const [name, declaration] of Object.entries(project.config ?? {})) {
    const key = name.includes(":") ? name : `${project.name}:${name}`;
    if (!(key in config)) {
      if (declaration.default === undefined) {
        throw new RenderError(
          `Stack '${stack}' is missing configuration value '${name}' (Pulumi.${stack}.yaml, key ${key}).`,
        );
      }
      const value = declaration.default;
      config[key] =
        typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
    }
    if (
      declaration.type !== undefined &&
      !secretKeys.includes(key) &&
      !matchesType(config[key], declaration)
    ) {
      const typeName =
        declaration.type === "array" ? `array<${declaration.items?.type}>` : declaration.type;
      throw new RenderError(
        `Stack '${stack}' with configuration key '${name}' must be of type '${typeName}'; got ${config[key]}.`,
      );
    }
  }
  return { project: project.name, config, secretKeys };
}

function matchesType(value: string, declaration: ConfigDeclaration): boolean {
  switch (declaration.type) {
    case "string":
      return !value.startsWith("{") && !value.startsWith("[");
    case "integer":
      return /^-?[0-9]+$/.test(value);
    case "boolean":
      return value === "true" || value === "false";
    case "array": {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        return false;
      }
      return (
        Array.isArray(parsed) &&
        parsed.every((item) =>
          matchesType(typeof item === "object" ? JSON.stringify(item) : String(item), {
            type: declaration.items?.type,
          }),
        )
      );
    }
    default:
      return true;
  }
}

function redactSecure(value: unknown, onSecret: () => void): unknown {
  if (Array.isArray(value)) {
    return value.map((item) => redactSecure(item, onSecret));
  }
  if (typeof value === "object" && value !== null) {
    const record = value as Record<string, unknown>;
    if (Object.keys(record).length === 1 && typeof record.secure === "string") {
      onSecret();
      return SECRET_PLACEHOLDER;
    }
    return Object.fromEntries(
      Object.entries(record).map(([k, v]) => [k, redactSecure(v, onSecret)]),
    );
  }
  return value;
}

/** Runs index.ts under mocks with the stack's config; returns the Kubernetes objects it registered. */
export async function runProgram(
  root: string,
  project: string,
  stack: string,
  config: Record<string, string>,
  secretKeys: string[],
): Promise<Manifest[]> {
  const registered: { type: string; inputs: Record<string, unknown> }[] = [];
  pulumi.runtime.setAllConfig(config, secretKeys);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, inputs: args.inputs });
        return { id: `${args.name}-id`, state: { ...args.inputs, ...offlineOutputs(args) } };
      },
      call: (args) => args.inputs,
    },
    project,
    stack,
    false,
  );
  let program: Record<string, unknown>;
  try {
    program = (await import(path.join(root, "index.ts"))) as Record<string, unknown>;
  } catch (error) {
    throw new RenderError((error as Error).message);
  }
  // The exports resolve once the component's children registered; then drain the RPC queue.
  for (const value of Object.values(program)) {
    if (pulumi.Output.isInstance(value)) {
      await new Promise((resolve) => value.apply(resolve));
    }
  }
  await pulumi.runtime.disconnect();
  return registered
    .filter((resource) => resource.type.startsWith("kubernetes:"))
    .map((resource) => toManifest(resource.inputs));
}

/** Outputs a provider would compute, where the program needs them: docker-build's pushed digest. */
function offlineOutputs(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  if (args.type !== "docker-build:index:Image") {
    return {};
  }
  const tags = (args.inputs.tags as string[] | undefined) ?? [];
  return {
    digest: OFFLINE_IMAGE_DIGEST,
    ref: tags.length > 0 ? `${tags[0]}@${OFFLINE_IMAGE_DIGEST}` : "",
    contextHash: "",
  };
}

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

/** Replaces `dir` by a directory holding exactly these files, atomically (readers never see half). */
export function writeDirectory(dir: string, files: { file: string; manifest: Manifest }[]): void {
  const parent = path.dirname(dir);
  fs.mkdirSync(parent, { recursive: true });
  const staging = fs.mkdtempSync(path.join(parent, `.${path.basename(dir)}.new-`));
  fs.chmodSync(staging, 0o755);
  for (const { file, manifest } of files) {
    fs.writeFileSync(path.join(staging, file), YAML.stringify(manifest, { lineWidth: 0 }));
  }
  const old = `${staging.replace(".new-", ".old-")}`;
  if (fs.existsSync(dir)) {
    fs.renameSync(dir, old);
  }
  fs.renameSync(staging, dir);
  fs.rmSync(old, { recursive: true, force: true });
}

function modeOf(manifest: Manifest): string {
  if (manifest.kind === "DaemonSet") {
    const spec = manifest.spec as {
      template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } };
    };
    const env = spec.template?.spec?.containers?.[0]?.env ?? [];
    const perPod = env.find((entry) => entry.name === "VNODE_PER_POD")?.value;
    return perPod === "true"
      ? "per-pod"
      : perPod === "false"
        ? "per-namespace"
        : `VNODE_PER_POD=${perPod}`;
  }
  if (manifest.kind === "RuntimeClass") {
    const scheduling = manifest.scheduling as { nodeSelector?: Record<string, string> } | undefined;
    return scheduling?.nodeSelector?.["vnode.loft.sh/isolation-mode"] ?? "";
  }
  return "";
}

export function table(files: { file: string; manifest: Manifest }[]): string {
  const rows = [
    ["KIND", "NAME", "NAMESPACE", "MODE", "FILE"],
    ...files.map(({ file, manifest }) => [
      manifest.kind,
      manifest.metadata.name,
      manifest.metadata.namespace ?? "",
      modeOf(manifest),
      file,
    ]),
  ];
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function readDirectory(dir: string): { file: string; manifest: Manifest }[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new UsageError(
      `--check needs a directory of YAML files; ${JSON.stringify(dir)} is not one.`,
    );
  }
  return fs
    .readdirSync(dir)
    .filter((file) => file.endsWith(".yaml") || file.endsWith(".yml"))
    .sort()
    .flatMap((file) =>
      YAML.parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8")).map((doc) => {
        if (doc.errors.length > 0) {
          throw new RenderError(`${file} is not valid YAML: ${doc.errors[0].message}`);
        }
        return { file, manifest: doc.toJS() as Manifest };
      }),
    );
}

export async function main(argv: string[]): Promise<number> {
  try {
    const options = parseArgs(argv);
    if (options.check !== undefined) {
      const files = readDirectory(options.check);
      const problems = await validateManifests(files);
      console.log(table(files));
      return report(problems, `${files.length} objects in ${options.check} are schema-valid.`, "");
    }
    const { project, config, secretKeys } = stackConfig(ROOT, options.stack);
    const manifests = sortManifests(
      await runProgram(ROOT, project, options.stack, config, secretKeys),
    );
    const files = manifests.map((manifest, i) => ({ file: fileName(i, manifest), manifest }));
    const problems = await validateManifests(files);
    console.log(table(files));
    if (manifests.some((manifest) => JSON.stringify(manifest).includes(OFFLINE_IMAGE_DIGEST))) {
      console.log(
        `The agent image is built and pushed by pulumi up (agentImage.build); its digest here, ${OFFLINE_IMAGE_DIGEST.slice(0, 15)}..., is a placeholder.`,
      );
    }
    if (problems.length > 0) {
      return report(problems, "", " nothing written.");
    }
    const out = path.resolve(options.out ?? path.join(ROOT, "out", options.stack));
    writeDirectory(out, files);
    return report(
      [],
      `${files.length} objects of stack ${options.stack} are schema-valid; wrote ${path.relative(process.cwd(), out) || "."}/.`,
      "",
    );
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`render: ${error.message}`);
      return 2;
    }
    console.error(`render: ${(error as Error).message}`);
    return 1;
  }
}

function report(problems: string[], success: string, onFailure: string): number {
  if (problems.length === 0) {
    console.log(success);
    return 0;
  }
  for (const problem of problems) {
    console.error(`render: ${problem}`);
  }
  console.error(`render: ${problems.length} invalid object(s).${onFailure}`);
  return 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`render: ${error.stack ?? error.message}`);
      process.exit(1);
    },
  );
}
