import * as path from "node:path";

/**
 * Resolves a host path (as seen on the node, e.g. `/etc/containerd/config.toml`) under the
 * agent's `--host-root`. Every host path in the agent goes through here, so tests run against
 * a temp dir and production against `/host`. Paths cannot escape the root through `..`.
 */
export function hostPath(hostRoot: string, p: string): string {
  if (!path.isAbsolute(p)) {
    throw new Error(`host path must be absolute; got "${p}".`);
  }
  return path.join(hostRoot, path.resolve("/", p));
}
