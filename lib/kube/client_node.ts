/**
 * client-node for `auth.ts`'s auth providers, imported there by URL only.
 * @module
 */

export { HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
