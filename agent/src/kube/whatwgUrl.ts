/**
 * Stands in for the `whatwg-url` package in the Kubernetes client's bundle (agent/build.mjs
 * aliases it there). node-fetch 2, which the client makes its requests with, is its only
 * importer and takes `URL` from Node's `url` module whenever that has one
 * (`Url.URL || whatwgUrl.URL`, twice in node-fetch/lib/index.js), which every Node since 10
 * does. Loading the package anyway parses tr46's Unicode mapping table at start-up: ~5 MiB of
 * the daemon's RSS and ~9 MiB of V8 heap for code that never runs (and the `punycode`
 * deprecation warning). Should another importer appear, it gets Node's own WHATWG URL.
 */
export const URL = globalThis.URL;
export const URLSearchParams = globalThis.URLSearchParams;
