/**
 * Tenancy enforcement shared by the component and `vnode-agent webhook`: the rules, the webhook
 * routes (namespaceSelectors per mode) and the CEL of the AdmissionPolicy backend.
 */
export * from "./rules";
export * from "./webhookRoutes";
export * from "./cel";
