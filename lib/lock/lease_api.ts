/**
 * The five Lease operations the lock needs, on one named Lease, as a small interface so
 * that unit tests can put a fake API server behind the lock and the bench can count requests.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { isStatus } from "../kube/api_error.ts";
import type { KubeClient } from "../kube/rest.ts";

/** A watch event on the Lease (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`). */
export interface LeaseEvent {
  type: string;
  /** The Lease; for `ERROR` a `Status` object, for `BOOKMARK` only its metadata. */
  object: V1Lease & { code?: number };
}

/**
 * Operations on one Lease. Failures are thrown as the client's `ApiException` (with `code`)
 * or as a network error.
 */
export interface LeaseApi {
  /** The Lease, or `undefined` when it does not exist. */
  get(): Promise<V1Lease | undefined>;
  /** Creates the Lease; 409 when it exists. */
  create(body: V1Lease): Promise<V1Lease>;
  /** Replaces the Lease; 409 when `body.metadata.resourceVersion` is not the current one. */
  replace(body: V1Lease): Promise<V1Lease>;
  /** Deletes the Lease only if its uid and resourceVersion still match; 409 otherwise. */
  delete(preconditions: { uid: string; resourceVersion: string }): Promise<void>;
  /**
   * Watches the Lease from `resourceVersion`. Resolves once the watch is established and
   * returns a promise that settles when the watch ends (server timeout, network error,
   * or `signal` aborting).
   */
  watch(
    resourceVersion: string,
    onEvent: (event: LeaseEvent) => void,
    signal: AbortSignal,
  ): Promise<{ ended: Promise<void> }>;
}

/**
 * Each request is abandoned (and its connection dropped) after the lock's request limit
 * (`LockDefaults.requestTimeoutMs`; not imported: context.ts imports this module's types),
 * so that a dead connection is not reused for the next renewal.
 */
const timeoutMs = 10_000;

/** How long the API server may keep one watch open; a fresh one is cheap. */
const WATCH_TIMEOUT_SECONDS = 290;

/**
 * The real {@linkcode LeaseApi} on a cluster.
 *
 * @param client The API server (`kubeClient()`): one connection for all requests.
 * @param namespace The Lease's namespace.
 * @param name The Lease's name.
 */
export function kubeLeaseApi(client: KubeClient, namespace: string, name: string): LeaseApi {
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const lease = `${leases}/${encodeURIComponent(name)}`;
  return {
    async get() {
      try {
        return await client.request<V1Lease>("GET", lease, { timeoutMs });
      } catch (err) {
        if (isStatus(err, 404)) return undefined;
        throw err;
      }
    },
    create: (body) => client.request<V1Lease>("POST", leases, { body, timeoutMs }),
    replace: (body) => client.request<V1Lease>("PUT", lease, { body, timeoutMs }),
    async delete(preconditions) {
      await client.request("DELETE", lease, {
        body: { apiVersion: "v1", kind: "DeleteOptions", preconditions },
        timeoutMs,
      });
    },
    async watch(resourceVersion, onEvent, signal) {
      const { ended } = await client.watch<LeaseEvent["object"]>(
        leases,
        {
          fieldSelector: `metadata.name=${name}`,
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: WATCH_TIMEOUT_SECONDS,
        },
        onEvent,
        signal,
      );
      return { ended };
    },
  };
}

/**
 * Wraps a {@linkcode LeaseApi} (or the queue's `QueueApi`) to count the requests it sends: each
 * method call is one (a watch counts once, when it is opened). For the bench's requests-per-minute
 * figure.
 */
export function countingApi<T extends object>(api: T): { api: T; count: () => number } {
  let n = 0;
  const counted = new Proxy(api, {
    get(target, key) {
      const value = Reflect.get(target, key);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        n++;
        return value.apply(target, args);
      };
    },
  });
  return { api: counted, count: () => n };
}
