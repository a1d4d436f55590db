/**
 * The Kubernetes connection: which cluster, identity and namespace helm would use
 * (`connection.ts`, from helm's flags in `cluster_flags.ts` and its `HELM_*`/`KUBECONFIG`
 * environment), what an API error means for the user (`api_error.ts`: exit codes, messages
 * naming verb, resource and user), the release namespace (`namespace.ts`), and the HTTP
 * layer: kubeconfig files (`kubeconfig.ts`), credentials (`auth.ts`), requests and watches
 * over Deno's native fetch (`rest.ts`). js-yaml and `@kubernetes/client-node`'s auth
 * providers come through `js_yaml.ts` and `client_node.ts`, imported only when a kubeconfig
 * needs them (`../import_later.ts`).
 *
 * May import: the shared leaves in `lib/` (`errors.ts`, `redact.ts`, ...) and
 * `@kubernetes/client-node` (type-only, or in `client_node.ts` for auth providers). Nothing from `lock/`, `helm/` or `cli/`.
 *
 * @module
 */

export { type ApiAction, apiError, isStatus } from "./api_error.ts";
export type { ClusterFlags } from "./cluster_flags.ts";
export {
  connect,
  type KubeConnection,
  resolveConnection,
  SERVICE_ACCOUNT_DIR,
} from "./connection.ts";
export { ensureNamespace } from "./namespace.ts";
export { ApiStatusError, type KubeClient, kubeClient, KubeNetworkError } from "./rest.ts";
export { MicroTime } from "./micro_time.ts";
