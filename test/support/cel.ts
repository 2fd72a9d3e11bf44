/**
 * CEL evaluated with a real implementation (@bufbuild/cel), with the data typed as the API server
 * types it for admission CEL, and the Kubernetes string extension library.
 */
import { type CelInput, type CelValue, isCelError, run } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import type { Registry } from "@bufbuild/protobuf";

/** Evaluates `expression`; a CEL error fails the test with the expression. */
export function evalCel(
  expression: string,
  bindings: Record<string, CelInput>,
  registry?: Registry,
): CelValue {
  const r = run(expression, bindings, { funcs: strings, ...(registry ? { registry } : {}) });
  if (isCelError(r)) throw new Error(`CEL ${expression}: ${r.message}`);
  return r;
}

/** JSON as the API server types it for CEL: integers are CEL ints. */
export function celInput(v: unknown): CelInput {
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (Array.isArray(v)) return v.map(celInput);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, celInput(x)]));
  }
  return v as CelInput;
}
