/** The render's two failures: a usage error (exit 2) and an invalid config or object (exit 1). */
export class UsageError extends Error {}
export class RenderError extends Error {}
