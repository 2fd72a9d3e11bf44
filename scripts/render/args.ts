/** The render's command line: `--stack <name>`, `--out <dir>`, `--check <dir>`. */
import { UsageError } from "./errors";

export interface Options {
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
