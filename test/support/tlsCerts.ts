/**
 * Test certificates made with the openssl CLI: one CA, and server certificates it signs for
 * 127.0.0.1/localhost. `secretDir` lays them out the way kubelet mounts a Secret (files behind a
 * `..data` symlink that a rotation swaps atomically).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** Why openssl cannot be used here, or undefined when it can. */
export function opensslUnavailable(): string | undefined {
  const r = spawnSync("openssl", ["version"], { encoding: "utf8" });
  return r.status === 0 ? undefined : "the openssl CLI is not installed (Debian package openssl)";
}

const openssl = (args: string[], cwd: string) =>
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });

export interface Ca {
  certPem: string;
  /** Issues a server certificate; returns PEM cert and key. */
  issue(name: string, days?: number): { cert: string; key: string };
}

/** A CA under `dir` with an EC P-256 key. */
export function makeCa(dir: string): Ca {
  fs.mkdirSync(dir, { recursive: true });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt"]
      .concat(["-days", "2", "-subj", "/CN=vnode-webhook-test-ca"])
      .concat(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign"]),
    dir,
  );
  let serial = 1;
  return {
    certPem: fs.readFileSync(path.join(dir, "ca.crt"), "utf8"),
    issue(name, days = 2) {
      const base = `${name}-${serial}`;
      openssl(
        ["req", "-new", ...ec, "-keyout", `${base}.key`, "-out", `${base}.csr`].concat([
          "-subj",
          `/CN=${name}`,
        ]),
        dir,
      );
      fs.writeFileSync(
        path.join(dir, `${base}.ext`),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
      );
      openssl(
        ["x509", "-req", "-in", `${base}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key"]
          .concat(["-set_serial", String(serial++), "-days", String(days)])
          .concat(["-extfile", `${base}.ext`, "-out", `${base}.crt`]),
        dir,
      );
      return {
        cert: fs.readFileSync(path.join(dir, `${base}.crt`), "utf8"),
        key: fs.readFileSync(path.join(dir, `${base}.key`), "utf8"),
      };
    },
  };
}

/**
 * A Secret volume as kubelet writes it: `<dir>/..<ts>/{tls.crt,tls.key}`, `..data` -> `..<ts>`,
 * `tls.crt` -> `..data/tls.crt`. `rotate` writes a new timestamped dir and renames a fresh
 * symlink over `..data`, so both files change in one atomic step, as in a real rotation.
 */
export function secretDir(dir: string, first: { cert: string; key: string }) {
  fs.mkdirSync(dir, { recursive: true });
  let generation = 0;
  const rotate = (pair: { cert: string; key: string }) => {
    const data = `..gen_${++generation}`;
    fs.mkdirSync(path.join(dir, data));
    fs.writeFileSync(path.join(dir, data, "tls.crt"), pair.cert);
    fs.writeFileSync(path.join(dir, data, "tls.key"), pair.key, { mode: 0o600 });
    fs.symlinkSync(data, path.join(dir, "..data_tmp"));
    fs.renameSync(path.join(dir, "..data_tmp"), path.join(dir, "..data"));
  };
  rotate(first);
  fs.symlinkSync("..data/tls.crt", path.join(dir, "tls.crt"));
  fs.symlinkSync("..data/tls.key", path.join(dir, "tls.key"));
  return {
    certFile: path.join(dir, "tls.crt"),
    keyFile: path.join(dir, "tls.key"),
    rotate,
  };
}
