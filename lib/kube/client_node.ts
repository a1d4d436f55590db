/**
 * What `auth.ts` takes from `@kubernetes/client-node` for a kubeconfig's `auth-provider`:
 * imported through `importLater` so that no other run resolves the npm package
 * (`import_later.ts`).
 * @module
 */

export { HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
