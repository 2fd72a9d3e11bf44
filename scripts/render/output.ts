/** What the render writes: the out/<stack>/ directory, the summary table, the verdict lines. */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { ISOLATION_MODE_LABEL } from "vnode-contract";
import { RenderError, UsageError } from "./errors";
import type { Manifest } from "./manifests";

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
    return scheduling?.nodeSelector?.[ISOLATION_MODE_LABEL] ?? "";
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

export function readDirectory(dir: string): { file: string; manifest: Manifest }[] {
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

export function report(problems: string[], success: string, onFailure: string): number {
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
