/**
 * client-node for `auth.ts`'s auth providers, imported only through `importLater`.
 * @module
 */

export { HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
