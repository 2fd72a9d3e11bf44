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
import * as path from "path";
import { parseArgs } from "./args";
import { UsageError } from "./errors";
import { OFFLINE_IMAGE_DIGEST, runProgram } from "./mockRun";
import { fileName, sortManifests } from "./manifests";
import { readDirectory, report, table, writeDirectory } from "./output";
import { stackConfig } from "./stackConfig";
import { validateManifests } from "./validate";

export { parseArgs } from "./args";
export { RenderError, UsageError } from "./errors";
export { Manifest, fileName, sortManifests, toManifest } from "./manifests";
export { OFFLINE_IMAGE_DIGEST, runProgram } from "./mockRun";
export { table, writeDirectory } from "./output";
export { stackConfig } from "./stackConfig";
export { validateManifests } from "./validate";

const ROOT = path.resolve(__dirname, "..", "..");

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

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`render: ${error.stack ?? error.message}`);
      process.exit(1);
    },
  );
}
