/**
 * js-yaml's emitter, for `-o yaml`: imported on demand so that no other run
 * resolves the npm package (`import_later.ts`).
 *
 * @module
 */

export { dump } from "js-yaml";
