import * as fs from "node:fs";
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

/** Symlinks followed before a path is refused as a loop (Linux's MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * The host path `p` names once every symlink in it is resolved the way the node itself would:
 * an absolute link target starts again at the host's `/` (that is, at `hostRoot`, never in the
 * agent's own filesystem), a relative one from the link's directory, and `..` stops at the root.
 * Config management often makes `/etc/containerd/config.toml` a link; the agent then edits
 * the file it points to and keeps the link. A missing component ends the resolution (the rest
 * is kept as written, for a file about to be created).
 */
export function realHostPath(hostRoot: string, p: string): string {
  if (!path.isAbsolute(p)) throw new Error(`host path must be absolute; got "${p}".`);
  let todo = p.split("/").filter((c) => c.length > 0);
  let done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === ".") continue;
    if (c === "..") {
      done.pop();
      continue;
    }
    const here = hostPath(hostRoot, "/" + [...done, c].join("/"));
    let st: fs.Stats;
    try {
      st = fs.lstatSync(here);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw err;
      done = [...done, c, ...todo.filter((x) => x !== ".")];
      break;
    }
    if (!st.isSymbolicLink()) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) {
      throw new Error(`${p} has more than ${MAX_LINKS} symlinks in a row on the host (a loop?).`);
    }
    const target = fs.readlinkSync(here);
    if (target.startsWith("/")) done = [];
    todo = [...target.split("/").filter((x) => x.length > 0), ...todo];
  }
  return "/" + done.join("/");
}

/** {@link hostPath} of {@link realHostPath}: where the agent reads and writes host file `p`. */
export function hostFilePath(hostRoot: string, p: string): string {
  return hostPath(hostRoot, realHostPath(hostRoot, p));
}
