/** The pure parts of test/support/images.ts: they run everywhere, also where buildah cannot. */
import * as path from "node:path";
import { REPO_ROOT, budArgs, parseLdd, podmanArgs, runArgs } from "../support/images";

describe("parseLdd", () => {
  it("returns the resolved libraries and the loader, without the vDSO, sorted", () => {
    const out = `\tlinux-vdso.so.1 (0x00007ffd4b5f1000)
\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f0c5e9d0000)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f0c5e600000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c5e41e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0c5e9e8000)
`;
    expect(parseLdd(out)).toEqual([
      "/lib/x86_64-linux-gnu/libc.so.6",
      "/lib/x86_64-linux-gnu/libdl.so.2",
      "/lib/x86_64-linux-gnu/libstdc++.so.6",
      "/lib64/ld-linux-x86-64.so.2",
    ]);
  });

  it("returns nothing for a static binary", () => {
    expect(parseLdd("\tnot a dynamic executable\n")).toEqual([]);
  });
});

describe("buildah and podman argv", () => {
  const store = {
    root: "/c/root",
    runroot: "/c/run",
    tmpdir: "/c/tmp",
    driver: "overlay" as const,
  };

  it("builds agent/Dockerfile from the repo root with cache, no pulls, no leftover containers", () => {
    expect(budArgs({ tag: "localhost/a:1", buildArgs: { BASE_IMAGE: "localhost/n:1" } })).toEqual([
      "bud",
      "--layers",
      "--force-rm",
      "--pull-never",
      "--network",
      "host",
      "--runtime",
      "runc",
      "--isolation",
      "oci",
      "--ulimit",
      "nofile=1024:1024",
      "--ulimit",
      "nproc=1024:1024",
      "--file",
      path.join(REPO_ROOT, "agent", "Dockerfile"),
      "--tag",
      "localhost/a:1",
      "--build-arg",
      "BASE_IMAGE=localhost/n:1",
      REPO_ROOT,
    ]);
  });

  it("runs the image without network, read-only, with explicit ulimits and read-only mounts", () => {
    expect(runArgs("img", ["plan"], { readOnlyMounts: { "/fixture": "/host" } })).toEqual([
      "run",
      "--rm",
      "--network",
      "none",
      "--read-only",
      "--ulimit",
      "nofile=1024:1024",
      "--ulimit",
      "nproc=1024:1024",
      "--volume",
      "/fixture:/host:ro",
      "img",
      "plan",
    ]);
  });

  it("gives podman the private store, runc, cgroupfs and file events", () => {
    expect(podmanArgs(store, ["images"])).toEqual([
      "--root",
      "/c/root",
      "--runroot",
      "/c/run",
      "--storage-driver",
      "overlay",
      "--runtime",
      "runc",
      "--cgroup-manager",
      "cgroupfs",
      "--events-backend",
      "file",
      "--tmpdir",
      "/c/tmp",
      "images",
    ]);
  });
});
