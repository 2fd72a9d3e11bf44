/** `env`: extra agent variables, literal or from a Secret, never one the component sets. */
import {
  DNS1123_SUBDOMAIN_RULE,
  NODE_NAME_ENV,
  POD_NAMESPACE_ENV,
  VNODE_PER_POD_ENV,
  isDnsSubdomain,
} from "vnode-contract";
import { fail, mustBe, show } from "./errors";
import { checkObject, isInputValue } from "./values";

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** The component's own env vars, which `env` must not set. */
const RESERVED_ENV: Record<string, string> = {
  [NODE_NAME_ENV]: "the downward API (the node's name)",
  [POD_NAMESPACE_ENV]: "the downward API (the pod's namespace)",
  [VNODE_PER_POD_ENV]: "isolationMode",
};

export function checkEnv(env: unknown): void {
  if (env === undefined) {
    return;
  }
  if (!Array.isArray(env)) {
    mustBe("env", "a list of { name, value } or { name, secretKeyRef: { name, key } }", env);
  }
  const seen = new Map<string, number>();
  (env as unknown[]).forEach((entry, i) => {
    const at = `env[${i}]`;
    const e = checkObject(at, entry, ["name", "value", "secretKeyRef"]);
    if (typeof e.name !== "string" || !ENV_NAME.test(e.name)) {
      fail(
        `${at}.name must be an environment variable name (letters, digits, "_", "-" and ".", not starting with a digit); got ${show(e.name)}.`,
      );
    }
    const envName = e.name as string;
    if (envName in RESERVED_ENV) {
      fail(
        `${at}.name ${show(envName)} is set by the component from ${RESERVED_ENV[envName]}; remove it from env.`,
      );
    }
    const first = seen.get(envName);
    if (first !== undefined) {
      fail(
        `${at}.name ${show(envName)} is already set by env[${first}]; env names must be unique.`,
      );
    }
    seen.set(envName, i);
    const hasValue = e.value !== undefined && e.value !== null;
    const hasRef = e.secretKeyRef !== undefined && e.secretKeyRef !== null;
    if (hasValue === hasRef) {
      fail(
        `${at} (${envName}) must set exactly one of value and secretKeyRef; got ${hasValue ? "both" : "neither"}.`,
      );
    }
    if (hasValue && typeof e.value !== "string" && !isInputValue(e.value)) {
      fail(`${at}.value must be a string; got ${show(e.value)}.`);
    }
    if (hasRef) {
      const ref = checkObject(`${at}.secretKeyRef`, e.secretKeyRef, ["name", "key"]);
      if (!isDnsSubdomain(ref.name)) {
        fail(`${at}.secretKeyRef.name must be ${DNS1123_SUBDOMAIN_RULE}; got ${show(ref.name)}.`);
      }
      if (typeof ref.key !== "string" || !SECRET_KEY.test(ref.key) || ref.key.length > 253) {
        fail(
          `${at}.secretKeyRef.key must be a Secret key (letters, digits, "-", "_" and "."); got ${show(ref.key)}.`,
        );
      }
    }
  });
}
