/**
 * Test harness: renders k3s/rke2 config templates with Go's own text/template (Debian's
 * golang-go builds test/support/gotemplate once per run), so template tests check what k3s
 * really renders, trim markers included, instead of a model of it.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const SOURCE = path.join(__dirname, "gotemplate", "main.go");

/** Why Go templates cannot be rendered here, or undefined when they can. */
export function goTemplateUnavailable(): string | undefined {
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "the Go toolchain is not installed (Debian package golang-go)";
  }
}

let binary: string | undefined;

/** Builds the renderer once (GOCACHE and the binary under a temp dir). */
function build(): string {
  if (binary !== undefined) return binary;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-gotemplate-"));
  const out = path.join(dir, "gotemplate");
  execFileSync("go", ["build", "-o", out, SOURCE], {
    cwd: path.dirname(SOURCE),
    env: {
      ...process.env,
      GOCACHE: path.join(dir, "cache"),
      GOPATH: path.join(dir, "gopath"),
      GO111MODULE: "off",
      GOFLAGS: "",
      CGO_ENABLED: "0",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  binary = out;
  return out;
}

/**
 * The config k3s renders from `template`, with `base` as its stock config (`{{ template "base" . }}`)
 * and `data` as the values the template reads (`.SystemdCgroup`, ...).
 */
export function renderGoTemplate(
  template: string,
  base: string,
  data: Record<string, unknown> = {},
): string {
  const bin = build();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-render-"));
  try {
    const files = ["template", "base", "data.json"].map((n) => path.join(dir, n));
    fs.writeFileSync(files[0], template);
    fs.writeFileSync(files[1], base);
    fs.writeFileSync(files[2], JSON.stringify(data));
    return execFileSync(bin, files, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
