/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
  // In the repo the workspace packages (`vnode`, `vnode-contract`) resolve to their sources
  // (tsconfig.json `paths`); their built dist/ is what a published tarball carries.
  moduleNameMapper: {
    "^vnode$": "<rootDir>/components/index.ts",
    "^vnode-contract$": "<rootDir>/contract/src/index.ts",
  },
  testTimeout: 60000,
};
