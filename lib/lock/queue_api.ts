/**
 * The Lease operations the deploy queue (`queue.ts`) needs: named Leases of one namespace,
 * and a list + watch of the tickets by label selector, as a small interface so that unit
 * tests can put a fake API server behind the queue and the bench can count requests.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { isStatus } from "../kube/api_error.ts";
import type { KubeClient } from "../kube/rest.ts";
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

/** As in `kubeLeaseApi`: a request is abandoned after the lock's request limit. */
const timeoutMs = 10_000;

/**
 * The real {@linkcode QueueApi} on a cluster.
 *
 * @param client The API server (`kubeClient()`): one connection for all requests.
 * @param namespace The namespace of the release (and of its lock).
 */
export function kubeQueueApi(client: KubeClient, namespace: string): QueueApi {
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const lease = (name: string) => `${leases}/${encodeURIComponent(name)}`;
  return {
    async get(name) {
      try {
        return await client.request<V1Lease>("GET", lease(name), { timeoutMs });
      } catch (err) {
        if (isStatus(err, 404)) return undefined;
        throw err;
      }
    },
    create: (body) => client.request<V1Lease>("POST", leases, { body, timeoutMs }),
    replace: (body) =>
      client.request<V1Lease>("PUT", lease(body.metadata?.name ?? ""), { body, timeoutMs }),
    async delete(name, preconditions) {
      await client.request("DELETE", lease(name), {
        body: { apiVersion: "v1", kind: "DeleteOptions", preconditions },
        timeoutMs,
      });
    },
    async list(labelSelector) {
      const list = await client.request<
        { items: V1Lease[]; metadata?: { resourceVersion?: string } }
      >(
        "GET",
        leases,
        { query: { labelSelector }, timeoutMs },
      );
      return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? "" };
    },
    async watch(labelSelector, resourceVersion, onEvent, signal) {
      const { ended } = await client.watch<LeaseEvent["object"]>(
        leases,
        {
          labelSelector,
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
