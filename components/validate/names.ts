/**
 * Kubernetes object names, by the contract's rules (the agent checks the same names with them),
 * and the component's own name, which prefixes every object name.
 */
import {
  DNS1123_LABEL_RULE,
  DNS1123_SUBDOMAIN_RULE,
  isDnsLabel,
  isDnsSubdomain,
} from "vnode-contract";
import { fail, mustBe } from "./errors";
import { checkBoolean } from "./values";

/**
 * Namespaces that belong to Kubernetes: the component must not relabel them Pod Security
 * `privileged` nor delete them on destroy, so it may only run in them when it does not create them.
 */
export const SYSTEM_NAMESPACES: readonly string[] = [
  "default",
  "kube-system",
  "kube-public",
  "kube-node-lease",
];

export function checkComponentName(name: unknown): void {
  if (!isDnsLabel(name)) {
    mustBe("name", `${DNS1123_LABEL_RULE}, because it prefixes the Kubernetes object names`, name);
  }
}

export function checkDnsLabel(argument: string, value: unknown): void {
  if (value !== undefined && !isDnsLabel(value)) {
    mustBe(argument, DNS1123_LABEL_RULE, value);
  }
}

export function checkDnsSubdomain(argument: string, value: unknown): void {
  if (value !== undefined && !isDnsSubdomain(value)) {
    mustBe(argument, DNS1123_SUBDOMAIN_RULE, value);
  }
}

/** `namespace` (maybe resolved from an Output): a DNS-1123 label, and no system one to create. */
export function checkNamespaceName(namespace: unknown, create: unknown): void {
  checkDnsLabel("namespace", namespace);
  if (create !== false && SYSTEM_NAMESPACES.includes(namespace as string)) {
    fail(
      `namespace ${JSON.stringify(namespace)} belongs to Kubernetes, and with createNamespace (the default) the component would label it Pod Security privileged and delete it on destroy: choose another namespace, or set createNamespace to false to run in it as it is.`,
    );
  }
}

/** `createNamespace` and `retainNamespace`: plain, they decide whether a Namespace is created. */
export function checkNamespaceFlags(create: unknown, retain: unknown): void {
  checkBoolean("createNamespace", create);
  checkBoolean("retainNamespace", retain);
  if (create === false && retain === true) {
    fail(
      "retainNamespace only applies with createNamespace: with createNamespace false the component never deletes the namespace.",
    );
  }
}
