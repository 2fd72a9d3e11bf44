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
import { mustBe } from "./errors";

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
