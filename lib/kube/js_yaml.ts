/**
 * js-yaml, for the kubeconfigs `yaml.ts`'s simple parser declines: imported through
 * `importLater` so that no other run resolves the npm package (`import_later.ts`).
 * @module
 */

export { load } from "js-yaml";
