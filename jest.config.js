/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  // The node e2e (`npm run e2e:node`) builds an image and runs pods for minutes: not in `npm test`
  // (its translation's unit test, test/e2e/kubelet.test.ts, is).
  testPathIgnorePatterns: process.env.VNODE_E2E
    ? ["/node_modules/"]
    : ["/node_modules/", "<rootDir>/test/e2e/node.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
  // In the repo the workspace packages (`vnode`, `vnode-contract`) resolve to their sources
  // (tsconfig.json `paths`); their built dist/ is what a published tarball carries.
  moduleNameMapper: {
    "^vnode$": "<rootDir>/components/index.ts",
    "^vnode-contract$": "<rootDir>/contract/src/index.ts",
  },
  testTimeout: 60000,
};
