/**
 * The contract between the component and `vnode-agent webhook`: the command line the Deployment
 * runs, parsed by the agent's own flag parser, yields exactly the rules the component routed the
 * webhook configurations with, and the TLS files it names are the ones the Secret mount provides.
 */
import {
  EnforcementMode,
  EnforcementScope,
  IsolationMode,
  PodSecurityLevel,
  VNodeRuntimeArgs,
} from "../../components/index";
import { resolveArgs } from "../../components/defaults";
import { WEBHOOK_TLS_DIR, buildWebhookDeployment } from "../../components/enforcement/webhook";
import type { WebhookFlagOptions } from "vnode-contract";
import { webhookOptions } from "../../agent/src/webhook/flags";
import { parseAgentArgv } from "../support/agentCli";

const cases: [string, Partial<VNodeRuntimeArgs>][] = [
  ["one per-namespace pool", {}],
  [
    "two pools, per-pod default, cert-manager installed",
    {
      isolationMode: IsolationMode.PerPod,
      pools: [
        { name: "a", nodeSelector: { pool: "a" } },
        { name: "b", isolationMode: IsolationMode.PerNamespace, nodeSelector: { pool: "b" } },
      ],
      certManager: { install: true },
    },
  ],
  ["a custom namespace and class name", { namespace: "sandbox", runtimeClassName: "vn" }],
  [
    "scope all-except-exempt, platform groups, Pod Security restricted",
    {
      enforcement: {
        scope: EnforcementScope.AllExceptExempt,
        mode: EnforcementMode.MutateAndValidate,
        namespaceLabelGuard: { platformGroups: ["platform-admins", "system:masters", "oidc:sre"] },
        podSecurityLevel: PodSecurityLevel.Restricted,
      },
    },
  ],
  [
    "the guard switched off",
    {
      enforcement: {
        namespaceSelector: { matchLabels: { tenant: "true" } },
        mode: EnforcementMode.Validate,
        namespaceLabelGuard: { enabled: false },
      },
    },
  ],
];

test.each(cases)("%s", async (_what, extra) => {
  const plan = resolveArgs("vnode", {
    agentImage: { ref: "img:1" },
    enforcement: {
      namespaceSelector: { matchLabels: { tenant: "true" } },
      mode: EnforcementMode.MutateAndValidate,
    },
    ...extra,
  });
  const deployment = buildWebhookDeployment(plan, plan.namespace) as unknown as {
    spec: {
      template: {
        spec: {
          containers: {
            command: string[];
            args: string[];
            volumeMounts: { mountPath: string }[];
          }[];
        };
      };
    };
  };
  const [container] = deployment.spec.template.spec.containers;
  const parsed = await parseAgentArgv(container.args);
  // POD_NAMESPACE comes from the downward API: the pod's own namespace.
  const options = webhookOptions(parsed.options as unknown as WebhookFlagOptions, {
    POD_NAMESPACE: plan.namespace as string,
  });
  expect(options.rules).toEqual(plan.enforcement?.rules);
  // The namespace label guard the agent judges namespaces with is the component's, exactly.
  expect(options.namespaceGuard).toStrictEqual(plan.enforcement?.namespaceGuard);
  expect([container.command, container.args[0]]).toEqual([["vnode-agent"], "webhook"]);
  expect([options.tlsCertFile, options.tlsKeyFile]).toEqual([
    `${container.volumeMounts[0].mountPath}/tls.crt`,
    `${container.volumeMounts[0].mountPath}/tls.key`,
  ]);
  expect(container.volumeMounts[0].mountPath).toBe(WEBHOOK_TLS_DIR);
  expect(options.listen).toEqual({ host: undefined, port: 8443 });
});
