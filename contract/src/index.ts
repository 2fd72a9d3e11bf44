/**
 * The contract between the Pulumi component and the node agent it deploys: what both sides must
 * agree on, and nothing else. No dependencies, no Pulumi and no Node.js imports: the component
 * imports it as a package and the agent bundle inlines it.
 */
export * from "./agent";
export * from "./agentPolicy";
export * from "./distributions";
export * from "./enforcement/cel";
export * from "./enforcement/namespaceGuard";
export * from "./enforcement/rules";
export * from "./enforcement/webhookRoutes";
export * from "./flags";
export * from "./labels";
export * from "./modes";
export * from "./names";
export * from "./rbac";
export * from "./runtime";
export * from "./webhook";
