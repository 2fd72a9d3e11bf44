import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The package boundaries: the component and the agent share only the contract package, imported
 * by its name; the contract imports nothing at all. Crossing a boundary fails the lint.
 */
const boundary = (message, ...regexes) => ({
  "no-restricted-imports": ["error", { patterns: regexes.map((regex) => ({ regex, message })) }],
});
const viaContract = "share code only through the contract package, imported as vnode-contract";

export default tseslint.config(
  { ignores: ["node_modules/", "out/", "bin/", "**/dist/", "**/*.js", "**/*.mjs", "**/*.cjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["agent/**/*.ts"],
    rules: boundary(viaContract, "(^|/)components(/|$)", "^vnode$", "(^|/)contract/"),
  },
  {
    files: ["components/**/*.ts"],
    rules: boundary(viaContract, "(^|/)agent(/|$)", "^vnode-agent", "(^|/)contract/"),
  },
  {
    // A bare `components` directory import resolves through components/package.json's `main`, i.e.
    // the built dist/, which may be stale or absent: the repo's program, scripts and tests run the
    // sources. (Another project imports the package as `vnode`.)
    files: ["index.ts", "scripts/**/*.ts", "test/**/*.ts"],
    rules: boundary(
      "import the component's sources as components/index, not the components directory (its main is the build)",
      "^(\\.{1,2}/)+components/?$",
    ),
  },
  {
    files: ["examples/**/*.ts"],
    rules: boundary(
      "an example uses the component as another project does: import it as vnode",
      "^\\.\\.?/",
      "^vnode-",
    ),
  },
  {
    files: ["contract/**/*.ts"],
    rules: boundary(
      "the contract has no dependencies: import only its own modules, by relative path",
      "^[^.]",
      "^\\.\\./\\.\\.",
    ),
  },
);
