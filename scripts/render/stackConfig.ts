/**
 * The config the Pulumi CLI would hand the program for one stack, read offline from Pulumi.yaml and
 * Pulumi.<stack>.yaml.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { RenderError, UsageError } from "./errors";
import { SECRET_PLACEHOLDER } from "./secrets";

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
