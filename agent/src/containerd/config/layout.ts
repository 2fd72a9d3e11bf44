/**
 * Where the node's containerd keeps its config, per Kubernetes distribution, and which one this
 * node runs. Paths are host paths (as seen on the node); the caller resolves them under
 * `--host-root`. Pure: existence is asked through a callback.
 */
import * as path from "node:path";
import { CONTAINERD_DISTRIBUTIONS, type ContainerdDistribution } from "vnode-contract";
import { AgentError, ExitCode } from "../../lib/errors";

const posix = path.posix;

export const DISTRIBUTIONS = Object.keys(CONTAINERD_DISTRIBUTIONS) as ContainerdDistribution[];

/** The CLI flags whose values reach {@link detectLayout}, for error messages. */
export const LAYOUT_FLAGS = {
  distribution: "--containerd-distribution",
  config: "--containerd-config",
  socket: "--containerd-socket",
} as const;

export interface ContainerdLayout {
  distribution: ContainerdDistribution;
  /** The config containerd loads. k3s, rke2 and microk8s render it from a template at start. */
  config: string;
  /**
   * The template `config` is rendered from: k3s/rke2 `config.toml.tmpl` (config version 2),
   * microk8s `containerd-template.toml`.
   */
  template?: string;
  /** k3s/rke2 only: `config-v3.toml.tmpl`, which k3s prefers when present (containerd 2.x). */
  templateV3?: string;
  /** A drop-in directory: k0s merges CRI config from it; for containerd, `conf.d`. */
  dropInDir?: string;
  socket: string;
}

/** Name of the drop-in file the agent owns. */
export const DROP_IN_NAME = "vnode-agent.toml";

/**
 * The agent's drop-in where no import glob covers a directory (the config then gets an
 * `imports` entry for it): in the layout's drop-in dir, else `conf.d` beside the config.
 */
export function ownDropIn(layout: ContainerdLayout): string {
  return posix.join(
    layout.dropInDir ?? posix.join(posix.dirname(layout.config), "conf.d"),
    DROP_IN_NAME,
  );
}

/** Whether containerd's config is rendered from a template on every start. */
export function isRendered(layout: ContainerdLayout): boolean {
  return layout.template !== undefined;
}

/**
 * Whether host file `p` is a Go text/template k3s/rke2 renders the config from (microk8s's
 * template is TOML with shell variables, not a Go template).
 */
export function isGoTemplate(layout: ContainerdLayout, p: string): boolean {
  return (
    (layout.distribution === "k3s" || layout.distribution === "rke2") &&
    (p === layout.template || p === layout.templateV3)
  );
}

/**
 * The layout of `distribution` with its config at `config` (a custom data dir, say): the
 * template and drop-in dir sit next to the config as the distribution places them.
 */
export function layoutFor(
  distribution: ContainerdDistribution,
  config?: string,
  socket?: string,
): ContainerdLayout {
  const d: { config: string; template?: string; dropInDir?: string; socket: string } =
    CONTAINERD_DISTRIBUTIONS[distribution];
  const cfg = config ?? d.config;
  const dir = posix.dirname(cfg);
  const layout: ContainerdLayout = { distribution, config: cfg, socket: socket ?? d.socket };
  switch (distribution) {
    case "k3s":
    case "rke2":
      layout.template = config === undefined ? d.template : `${cfg}.tmpl`;
      layout.templateV3 = posix.join(posix.dirname(layout.template!), "config-v3.toml.tmpl");
      break;
    case "microk8s":
      layout.template =
        config === undefined ? d.template : posix.join(dir, "containerd-template.toml");
      break;
    case "k0s":
      layout.dropInDir = config === undefined ? d.dropInDir : posix.join(dir, "containerd.d");
      break;
    case "containerd":
      layout.dropInDir = config === undefined ? d.dropInDir : posix.join(dir, "conf.d");
      break;
  }
  return layout;
}

export interface DetectOptions {
  /** `auto` (the default) or a distribution name. */
  distribution?: string;
  /** An explicit config path (`--containerd-config`): it wins over detection. */
  config?: string;
  /** An explicit socket path (`--containerd-socket`). */
  socket?: string;
}

const bad = (m: string) => new AgentError(m, ExitCode.BadInput);

function checkAbsolute(flag: string, p: string | undefined): void {
  if (p !== undefined && !posix.isAbsolute(p))
    throw bad(`${flag} must be an absolute host path; got "${p}".`);
}

/** The files whose presence marks a distribution: its config, or the template it renders from. */
function markers(l: ContainerdLayout): string[] {
  return [l.config, l.template, l.templateV3].filter((p): p is string => p !== undefined);
}

/**
 * The node's containerd layout. An explicit config path wins: it selects the distribution whose
 * config or template it is (or plain containerd with that config). Otherwise the distributions
 * whose files exist are candidates; a k3s/rke2/microk8s/k0s one wins over a plain containerd
 * that may be installed beside it (say, for Docker), and a socket that exists breaks ties.
 */
export function detectLayout(
  exists: (hostPath: string) => boolean,
  opts: DetectOptions = {},
): ContainerdLayout {
  checkAbsolute(LAYOUT_FLAGS.config, opts.config);
  checkAbsolute(LAYOUT_FLAGS.socket, opts.socket);
  const wanted = opts.distribution ?? "auto";
  if (wanted !== "auto" && !(DISTRIBUTIONS as string[]).includes(wanted)) {
    throw bad(
      `${LAYOUT_FLAGS.distribution} must be one of auto, ${DISTRIBUTIONS.join(", ")}; got "${wanted}".`,
    );
  }
  if (opts.config !== undefined) {
    let dist = wanted as ContainerdDistribution | "auto";
    let config = opts.config;
    if (dist === "auto") {
      const known = DISTRIBUTIONS.map((d) => layoutFor(d)).find((l) =>
        markers(l).includes(opts.config!),
      );
      dist = known?.distribution ?? "containerd";
      if (known !== undefined) config = known.config;
    }
    const layout = layoutFor(
      dist,
      config === CONTAINERD_DISTRIBUTIONS[dist].config ? undefined : config,
      opts.socket,
    );
    if (!markers(layout).some(exists)) {
      throw bad(
        `${LAYOUT_FLAGS.config} ${opts.config} does not exist on the host; pass the path of the config containerd loads.`,
      );
    }
    return layout;
  }
  const pool = wanted === "auto" ? DISTRIBUTIONS : [wanted as ContainerdDistribution];
  let candidates = pool
    .map((d) => layoutFor(d, undefined, opts.socket))
    .filter((l) => markers(l).some(exists));
  if (candidates.length === 0) {
    const looked = pool.flatMap((d) => markers(layoutFor(d))).join(", ");
    throw bad(
      `found no containerd config on the host (looked for ${looked}); pass ${LAYOUT_FLAGS.config} with the path of the config containerd loads.`,
    );
  }
  if (candidates.length > 1) {
    const special = candidates.filter((l) => l.distribution !== "containerd");
    if (special.length > 0) candidates = special;
  }
  if (candidates.length > 1 && opts.socket === undefined) {
    const live = candidates.filter((l) => exists(l.socket));
    if (live.length > 0) candidates = live;
  }
  if (candidates.length > 1) {
    const names = candidates.map((l) => `${l.distribution} (${l.config})`).join(", ");
    throw bad(
      `found several containerd configs on the host: ${names}; pass ${LAYOUT_FLAGS.config} to choose one.`,
    );
  }
  return candidates[0];
}
