/**
 * Stack program: this stack's config -> one VNodeRuntime -> its outputs. The Kubernetes provider is
 * the stack's default one (kubeconfig / `kubernetes:context` config).
 */
import * as pulumi from "@pulumi/pulumi";
import { VNodeRuntime, VNodeRuntimeArgsError } from "./components/index";
import { StackConfigError, readStackConfig } from "./components/stackConfig";

function build(): VNodeRuntime {
  try {
    return new VNodeRuntime("vnode", readStackConfig(pulumi.getProject()));
  } catch (error) {
    if (error instanceof VNodeRuntimeArgsError || error instanceof StackConfigError) {
      // A RunError prints the sentence alone, without a stack trace.
      throw new pulumi.RunError(`Invalid config of stack ${pulumi.getStack()}: ${error.message}`);
    }
    throw error;
  }
}

const runtime = build();

export const namespace = runtime.namespace;
export const runtimeClassNames = runtime.runtimeClassNames;
export const daemonSetNames = runtime.daemonSetNames;
export const isolationModes = runtime.isolationModes;
export const vnodePerPod = runtime.vnodePerPod;
export const agentImageRef = runtime.agentImageRef;
