/** Kubernetes name rules, with the words error messages use to describe them. */

/** A DNS-1123 label: namespaces, most object names. */
export const DNS1123_LABEL = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1123_LABEL_RULE =
  'a DNS-1123 label (lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters)';

/** A DNS-1123 subdomain: RuntimeClasses, Secrets, ConfigMaps. */
export const DNS1123_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const DNS1123_SUBDOMAIN_RULE =
  'a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters)';

export const isDnsLabel = (value: unknown): value is string =>
  typeof value === "string" && DNS1123_LABEL.test(value);
export const isDnsSubdomain = (value: unknown): value is string =>
  typeof value === "string" && DNS1123_SUBDOMAIN.test(value);
