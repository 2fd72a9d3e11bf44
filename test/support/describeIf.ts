/**
 * `describe` that skips with a printed reason when `unavailable` says why the suite cannot run
 * on this machine (no root, a missing Debian package), except on CI (`CI=true`), where the
 * missing requirement is a failing test instead of a silent skip.
 */
export function describeIf(unavailable: string | undefined, name: string, fn: () => void): void {
  if (!unavailable) {
    describe(name, fn);
  } else if (process.env.CI === "true") {
    describe(name, () => {
      it("has what it needs to run", () => {
        throw new Error(`Cannot run on CI: ${unavailable}.`);
      });
    });
  } else {
    console.warn(`Skipping "${name}": ${unavailable}.`);
    describe.skip(name, fn);
  }
}
