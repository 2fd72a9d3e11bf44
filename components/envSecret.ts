/** The Secret holding agent env values only known at deploy time. */
import * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import type { RuntimePlan } from "./defaults";
import { namespacedMeta } from "./labels";

/** Every value is marked secret, so Pulumi encrypts it in state whatever its origin. */
export function buildEnvSecret(
  plan: RuntimePlan,
  secret: NonNullable<RuntimePlan["envSecret"]>,
  namespace: pulumi.Input<string>,
): k8s.core.v1.SecretArgs {
  const stringData: Record<string, pulumi.Input<string>> = {};
  for (const [key, value] of Object.entries(secret.data)) {
    stringData[key] = pulumi.secret(value);
  }
  return { metadata: namespacedMeta(plan, secret.name, namespace), type: "Opaque", stringData };
}
