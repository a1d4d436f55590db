/**
 * js-yaml's emitter, for `-o yaml` (`lock_output.ts` imports it when it prints YAML). Deno
 * still resolves the package at start-up, as for any literal import: hiding it saved a few
 * milliseconds, less than a start-up trick must earn to stay (docs/performance.md).
 *
 * @module
 */

export { dump } from "js-yaml";
