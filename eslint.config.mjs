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
  { ignores: ["node_modules/", "out/", "bin/", "**/dist/", "**/*.js", "**/*.mjs"] },
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
    files: ["contract/**/*.ts"],
    rules: boundary(
      "the contract has no dependencies: import only its own modules, by relative path",
      "^[^.]",
      "^\\.\\./\\.\\.",
    ),
  },
);
