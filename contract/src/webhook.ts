/** The admission webhook (`vnode-agent webhook`) and what tenancy enforcement never touches. */

/** Namespaces tenancy enforcement never touches, whatever the user configures. */
export const ALWAYS_EXCLUDED_NAMESPACES = ["kube-system", "kube-node-lease"] as const;

/**
 * The admission webhook server (`vnode-agent webhook`), HTTPS only. `mutate` serves the default
 * mode's RuntimeClass, `mutate/<mode>` that mode's; `validate/<mode>` and
 * `validate/unknown-isolation` judge pods by what their namespace's isolation label means. The
 * component routes each namespace to one of them by namespaceSelector, since a webhook never
 * sees namespace labels (webhookRoutes.ts). The bare `validate` (any vNode class, whatever the
 * mode) is still served for configurations written by earlier versions during an upgrade.
 */
export const WEBHOOK_HTTPS = {
  port: 8443,
  portName: "https",
  mutate: "/mutate",
  validate: "/validate",
  healthz: "/healthz",
  readyz: "/readyz",
} as const;
