/**
 * The names of @kubernetes/client-node the agent uses, and the only module that imports the
 * package. agent/build.mjs bundles this file on its own (dist/vendor/) and lets esbuild drop the
 * rest of the package: about half its code, and ~7 MiB of the daemon's RSS. Because kube.ts
 * can only reach the client through these exports, a name it starts to use must be added here
 * (or it does not compile), so the bundle cannot miss one at run time.
 */
export {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  Observable,
  PatchStrategy,
  setHeaderMiddleware,
} from "@kubernetes/client-node";
export type {
  ConfigurationOptions,
  CoreV1Event,
  ObservableMiddleware,
  V1DaemonSet,
  V1Node,
  V1Pod,
} from "@kubernetes/client-node";
