/**
 * The Lease operations the deploy queue (`queue.ts`) needs: named Leases of one namespace,
 * and a list + watch of the tickets by label selector, as a small interface so that unit
 * tests can put a fake API server behind the queue and the bench can count requests.
 *
 * @module
 */

import {
  type CoordinationV1Api,
  CoordinationV1Api as CoordinationV1ApiClass,
  type KubeConfig,
  type V1Lease,
  Watch,
} from "@kubernetes/client-node";
import { isStatus } from "../kube/api_error.ts";
import type { LeaseEvent } from "./lease_api.ts";

/**
 * Operations on the Leases of one namespace. Failures are thrown as the client's
 * `ApiException` (with `code`) or as a network error.
 */
export interface QueueApi {
  /** The Lease `name`, or `undefined` when it does not exist. */
  get(name: string): Promise<V1Lease | undefined>;
  /** Creates a Lease; 409 when it exists. */
  create(body: V1Lease): Promise<V1Lease>;
  /** Replaces a Lease; 409 when `body.metadata.resourceVersion` is not the current one. */
  replace(body: V1Lease): Promise<V1Lease>;
  /** Deletes a Lease only if its uid and resourceVersion still match; 409 otherwise. */
  delete(name: string, preconditions: { uid: string; resourceVersion: string }): Promise<void>;
  /** The Leases matching `labelSelector`, and the list's resourceVersion to watch from. */
  list(labelSelector: string): Promise<{ items: V1Lease[]; resourceVersion: string }>;
  /** Watches the Leases matching `labelSelector` from `resourceVersion` (see `LeaseApi.watch`). */
  watch(
    labelSelector: string,
    resourceVersion: string,
    onEvent: (event: LeaseEvent) => void,
    signal: AbortSignal,
  ): Promise<{ ended: Promise<void> }>;
}

/** How long the API server may keep one watch open; a fresh one is cheap. */
const WATCH_TIMEOUT_SECONDS = 290;

/**
 * The real {@linkcode QueueApi} on a cluster.
 *
 * @param kubeConfig The connection.
 * @param namespace The namespace of the release (and of its lock).
 */
export function kubeQueueApi(kubeConfig: KubeConfig, namespace: string): QueueApi {
  const api: CoordinationV1Api = kubeConfig.makeApiClient(CoordinationV1ApiClass);
  return {
    async get(name) {
      try {
        return await api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (isStatus(err, 404)) return undefined;
        throw err;
      }
    },
    create: (body) => api.createNamespacedLease({ namespace, body }),
    replace: (body) =>
      api.replaceNamespacedLease({ name: body.metadata?.name ?? "", namespace, body }),
    async delete(name, preconditions) {
      await api.deleteNamespacedLease({ name, namespace, body: { preconditions } });
    },
    async list(labelSelector) {
      const list = await api.listNamespacedLease({ namespace, labelSelector });
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? "" };
    },
    async watch(labelSelector, resourceVersion, onEvent, signal) {
      const { promise: ended, resolve, reject } = Promise.withResolvers<void>();
      const controller = await new Watch(kubeConfig).watch(
        `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`,
        {
          labelSelector,
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: WATCH_TIMEOUT_SECONDS,
        },
        (type, object) => onEvent({ type, object }),
        (err) => err ? reject(err) : resolve(),
      );
      // As in `kubeLeaseApi`: client-node does not always call `done` after an abort.
      const abort = () => {
        controller.abort();
        resolve();
      };
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
      ended.catch(() => {}).finally(() => signal.removeEventListener("abort", abort));
      await Promise.race([ended, Promise.resolve()]);
      return { ended };
    },
  };
}

/**
 * Wraps a {@linkcode QueueApi} to count the requests it sends (a watch counts once, when
 * it is opened). For the bench's requests-per-minute figure.
 */
export function countingQueueApi(api: QueueApi): { api: QueueApi; count: () => number } {
  let n = 0;
  const counted = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => (...a: A) => {
    n++;
    return f(...a);
  };
  return {
    api: {
      get: counted(api.get.bind(api)),
      create: counted(api.create.bind(api)),
      replace: counted(api.replace.bind(api)),
      delete: counted(api.delete.bind(api)),
      list: counted(api.list.bind(api)),
      watch: counted(api.watch.bind(api)),
    },
    count: () => n,
  };
}
