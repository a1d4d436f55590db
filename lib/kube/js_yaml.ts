/**
 * js-yaml for the kubeconfigs `yaml.ts` declines, imported only through `importLater`.
 * @module
 */

export { load } from "js-yaml";
