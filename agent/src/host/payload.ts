/**
 * The vNode payload by role: the payload dir (`--payload-dir`, in the image
 * `AGENT_IMAGE.payloadDir`) holds an entry per role name (`containerd-shim-vnode-v2`,
 * `vnode-cni`, `vnode-manager`), each a file or a symlink, typically all links to one
 * multi-call binary. Each distinct binary is installed once, under its own name, and every role
 * name becomes a link to it where the role is called from: the install dir (shim, manager) and
 * containerd's CNI bin dir (`vnode-cni`, where CNI looks plugins up by `type`). Nothing is
 * guessed: a missing role is an error naming it.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { PAYLOAD_ROLE_NAMES, PAYLOAD_ROLES, type PayloadRole } from "vnode-contract";
import { badInput } from "../lib/errors";
import { errno } from "./fsAtomic";
import type { WantedLink } from "./links";

export interface PayloadRoles {
  /** The distinct binaries to install, each under its own file name. */
  files: { name: string; source: string }[];
  /** Role -> the installed file name of the binary that plays it. */
  binaryOf: Record<PayloadRole, string>;
}

const ROLE_LIST = PAYLOAD_ROLE_NAMES.map((r) => PAYLOAD_ROLES[r]).join(", ");

/** Resolves every role of the payload dir to a regular file. */
export async function readPayloadRoles(payloadDir: string): Promise<PayloadRoles> {
  const files = new Map<string, string>(); // real path -> installed name
  const names = new Map<string, string>(); // installed name -> real path
  const binaryOf = {} as Record<PayloadRole, string>;
  for (const role of PAYLOAD_ROLE_NAMES) {
    const entry = path.join(payloadDir, PAYLOAD_ROLES[role]);
    let real: string;
    try {
      real = await fsp.realpath(entry);
    } catch (err) {
      if (errno(err) !== "ENOENT") throw err;
      throw badInput(
        `--payload-dir ${payloadDir} has no ${PAYLOAD_ROLES[role]} (or it is a dangling link); a vNode payload holds ${ROLE_LIST}, as files or links to one multi-call binary.`,
      );
    }
    if (!(await fsp.stat(real)).isFile()) {
      throw badInput(
        `--payload-dir ${payloadDir}: ${PAYLOAD_ROLES[role]} resolves to ${real}, which is not a regular file.`,
      );
    }
    let name = files.get(real);
    if (name === undefined) {
      name = path.basename(real);
      const other = names.get(name);
      if (other !== undefined) {
        throw badInput(
          `--payload-dir ${payloadDir}: ${other} and ${real} would both be installed as ${name}; give the payload's binaries distinct names.`,
        );
      }
      files.set(real, name);
      names.set(name, real);
    }
    binaryOf[role] = name;
  }
  return {
    files: [...files].map(([source, name]) => ({ name, source })),
    binaryOf,
  };
}

/** Where each role is called from, as links to the installed binary (host paths). Pure. */
export function roleLinks(
  roles: PayloadRoles,
  installDir: string,
  cniBinDir: string,
): WantedLink[] {
  const links: WantedLink[] = [];
  for (const role of PAYLOAD_ROLE_NAMES) {
    const name = PAYLOAD_ROLES[role];
    const target = path.posix.join(installDir, roles.binaryOf[role]);
    if (roles.binaryOf[role] !== name) {
      links.push({ path: path.posix.join(installDir, name), target, role: name });
    }
    if (role === "cni") links.push({ path: path.posix.join(cniBinDir, name), target, role: name });
  }
  return links;
}

/** Host path containerd runs as the handler's shim (`runtime_path`). */
export function shimPath(installDir: string): string {
  return path.posix.join(installDir, PAYLOAD_ROLES.shim);
}
