/**
 * The Dockerfile's payload selector (agent/src/image/selectPayload.ts) on image filesystems laid
 * out in temp dirs: vNode's multi-call binary with links (relative, absolute, through a linked
 * directory, hard), separate files, and every way an image can fail to be a vNode runtime.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PAYLOAD_ROLES } from "vnode-contract";
import {
  PAYLOAD_NAMES,
  PayloadError,
  findByName,
  resolveInImage,
  selectPayload,
} from "../../agent/src/image/selectPayload";

const SHIM = PAYLOAD_ROLES.shim;
const MANAGER = PAYLOAD_ROLES.manager;
const CNI = PAYLOAD_ROLES.cni;
const TOOL = path.resolve(__dirname, "../../agent/dist/tools/select-payload.js");

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-select-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** An image root: `files` are path -> content (mode 0755), `links` path -> symlink target. */
function image(
  files: Record<string, string>,
  links: Record<string, string> = {},
  modes: Record<string, number> = {},
): string {
  const root = tmp();
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), content);
    fs.chmodSync(path.join(root, p), modes[p] ?? 0o755);
  }
  for (const [p, target] of Object.entries(links)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.symlinkSync(target, path.join(root, p));
  }
  return root;
}

/** The payload dir as written: name -> file content and mode, or symlink target. */
function layout(out: string): Record<string, string> {
  const got: Record<string, string> = {};
  for (const name of fs.readdirSync(out).sort()) {
    const p = path.join(out, name);
    const st = fs.lstatSync(p);
    got[name] = st.isSymbolicLink()
      ? `-> ${fs.readlinkSync(p)}`
      : `${fs.readFileSync(p, "utf8")} ${(st.mode & 0o7777).toString(8)}`;
  }
  return got;
}

describe("payload selection from an image filesystem", () => {
  it("takes the role names in the contract's order, the shim first", () => {
    expect(PAYLOAD_NAMES).toEqual(["containerd-shim-vnode-v2", "vnode-cni", "vnode-manager"]);
  });

  it("keeps a multi-call binary's links as links: one file, the other roles symlink to it", () => {
    // Links as an image would have them: relative, absolute (the image's path), and through a
    // linked directory (/bin -> usr/bin).
    const root = image(
      { "/usr/bin/vnode": "multi-call" },
      {
        "/bin": "usr/bin",
        [`/usr/local/bin/${SHIM}`]: "/bin/vnode",
        [`/usr/local/bin/${MANAGER}`]: "../../bin/vnode",
        [`/usr/bin/${CNI}`]: "vnode",
      },
    );
    const out = path.join(tmp(), "payload");
    selectPayload(root, out, "VNODE_IMAGE test");
    expect(layout(out)).toEqual({
      [SHIM]: "multi-call 755",
      [CNI]: `-> ${SHIM}`,
      [MANAGER]: `-> ${SHIM}`,
    });
  });

  it("treats hard links as one file too", () => {
    const root = image({ [`/opt/vnode/${SHIM}`]: "multi-call" });
    fs.linkSync(path.join(root, `opt/vnode/${SHIM}`), path.join(root, `opt/vnode/${MANAGER}`));
    fs.linkSync(path.join(root, `opt/vnode/${SHIM}`), path.join(root, `opt/vnode/${CNI}`));
    const out = path.join(tmp(), "payload");
    selectPayload(root, out, "VNODE_IMAGE test");
    expect(layout(out)).toEqual({
      [SHIM]: "multi-call 755",
      [CNI]: `-> ${SHIM}`,
      [MANAGER]: `-> ${SHIM}`,
    });
  });

  it("copies separate files as files, modes kept", () => {
    const root = image(
      { [`/a/${SHIM}`]: "shim", [`/b/${MANAGER}`]: "manager", [`/c/${CNI}`]: "cni" },
      {},
      { [`/b/${MANAGER}`]: 0o750 },
    );
    const out = path.join(tmp(), "payload");
    selectPayload(root, out, "VNODE_IMAGE test");
    expect(layout(out)).toEqual({
      [SHIM]: "shim 755",
      [CNI]: "cni 755",
      [MANAGER]: "manager 750",
    });
  });

  it("names every missing role and what it did find", () => {
    const root = image({ [`/usr/bin/${MANAGER}`]: "m", "/usr/bin/vnode-runtime": "x" });
    expect(() =>
      selectPayload(root, path.join(tmp(), "p"), "VNODE_IMAGE ghcr.io/x/vnode:1"),
    ).toThrow(
      new PayloadError(
        `VNODE_IMAGE ghcr.io/x/vnode:1 has no ${SHIM}, no ${CNI} (searched its whole filesystem for a file or symlink of that name); found ${MANAGER} at /usr/bin/${MANAGER}. Set VNODE_IMAGE to the vNode runtime image of your release.`,
      ),
    );
  });

  it("refuses two different files under one role name", () => {
    const root = image({
      [`/a/${SHIM}`]: "one",
      [`/b/${SHIM}`]: "two",
      [`/a/${MANAGER}`]: "m",
      [`/a/${CNI}`]: "c",
    });
    expect(() => selectPayload(root, path.join(tmp(), "p"), "agent/payload/")).toThrow(
      new PayloadError(
        `agent/payload/ has 2 different files named ${SHIM} (/a/${SHIM} -> /a/${SHIM}, /b/${SHIM} -> /b/${SHIM}); cannot tell which is the runtime.`,
      ),
    );
  });

  it("accepts the same file reached under one name twice (a link to it named alike)", () => {
    const root = image(
      { [`/usr/bin/${SHIM}`]: "s", [`/usr/bin/${MANAGER}`]: "m", [`/usr/bin/${CNI}`]: "c" },
      { [`/usr/local/bin/${SHIM}`]: `/usr/bin/${SHIM}` },
    );
    const out = path.join(tmp(), "payload");
    selectPayload(root, out, "x");
    expect(layout(out)[SHIM]).toBe("s 755");
  });

  it("refuses a role that is not executable, or a link that dangles", () => {
    const root = image(
      { [`/bin/${SHIM}`]: "s", [`/bin/${MANAGER}`]: "m", [`/bin/${CNI}`]: "c" },
      {},
      { [`/bin/${CNI}`]: 0o644 },
    );
    expect(() => selectPayload(root, path.join(tmp(), "p"), "x")).toThrow(
      new PayloadError(`x: ${CNI} at /bin/${CNI} (/bin/${CNI}) is not executable.`),
    );
    const dangling = image({}, { [`/bin/${SHIM}`]: "/gone/vnode" });
    expect(() => resolveInImage(dangling, `/bin/${SHIM}`)).toThrow(
      new PayloadError(`/bin/${SHIM} resolves to /gone, which does not exist`),
    );
  });

  it("stops at a symlink loop", () => {
    const root = image({}, { "/a": "b", "/b": "a" });
    expect(() => resolveInImage(root, "/a")).toThrow(/^\/a: more than 40 symlinks \(a loop\?\)$/);
  });

  it("never searches /proc, /sys or /dev, and never follows a linked directory", () => {
    const root = image(
      { [`/proc/1/${SHIM}`]: "p", [`/elsewhere/${MANAGER}`]: "m" },
      { "/linked": "/elsewhere" },
    );
    expect(Object.fromEntries(findByName(root, PAYLOAD_NAMES))).toEqual({
      [SHIM]: [],
      [CNI]: [],
      [MANAGER]: [`/elsewhere/${MANAGER}`],
    });
  });

  it("the bundled tool (as the Dockerfile runs it) exits 1 with the sentence, 0 with the layout", () => {
    if (!fs.existsSync(TOOL)) throw new Error(`${TOOL} is missing; run npm run build first.`);
    const empty = image({ "/etc/os-release": "x" });
    let failure: { status: number; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, [TOOL, empty, path.join(tmp(), "p"), "VNODE_IMAGE img"], {
        stdio: "pipe",
      });
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      failure = { status: e.status, stderr: e.stderr.toString() };
    }
    expect(failure).toEqual({
      status: 1,
      stderr: `vNode payload: VNODE_IMAGE img has no ${SHIM}, no ${CNI}, no ${MANAGER} (searched its whole filesystem for a file or symlink of that name). Set VNODE_IMAGE to the vNode runtime image of your release.\n`,
    });
    const root = image(
      { "/usr/bin/vnode": "mc" },
      {
        [`/usr/bin/${SHIM}`]: "vnode",
        [`/usr/bin/${MANAGER}`]: "vnode",
        [`/usr/bin/${CNI}`]: "vnode",
      },
    );
    const out = path.join(tmp(), "p");
    const stdout = execFileSync(process.execPath, [TOOL, root, out, "x"], { encoding: "utf8" });
    expect(stdout).toBe(
      `${SHIM}: /usr/bin/vnode (mode 755)\n${CNI} -> ${SHIM}\n${MANAGER} -> ${SHIM}\n`,
    );
  });
});
