/**
 * The Lease requests of the lock and its queue, on one namespace, as a small interface so that
 * unit tests of the timing logic can put a fake API server behind it.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { apiError, isStatus } from "../kube/api_error.ts";
import type { KubeClient } from "../kube/rest.ts";
import { REQUEST_LIMIT_MS as timeoutMs } from "./lease.ts";

/** A watch event: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR` (then a `Status`). */
export interface LeaseEvent {
  type: string;
  object: V1Lease & { code?: number };
}

/** A list: its resourceVersion (to watch from), the server's clock (`Date` header, epoch ms). */
export interface LeaseList {
  items: V1Lease[];
  resourceVersion: string;
  serverTime?: number;
}

/** Lease requests on one namespace; failures are `ApiStatusError`s (with `code`) or network errors. */
export interface LeaseApi {
  /** The Leases matching `labelSelector`. */
  list(labelSelector: string): Promise<LeaseList>;
  /** The Lease `name`, or `undefined` when there is none. */
  get(name: string): Promise<V1Lease | undefined>;
  /** Creates a Lease (`metadata.generateName` gets a name from the server); 409 when it exists. */
  create(body: V1Lease): Promise<V1Lease>;
  /** Replaces a Lease; 409 when `body.metadata.resourceVersion` is no longer current. */
  replace(body: V1Lease): Promise<V1Lease>;
  /** Deletes a Lease only if its uid and resourceVersion still match; 409 otherwise. */
  delete(name: string, preconditions: { uid: string; resourceVersion: string }): Promise<void>;
  /**
   * Watches the Leases matching `labelSelector` from `resourceVersion`. Resolves once the
   * watch is open, with `ended`, which settles when it ends or breaks; `signal` ends it.
   */
  watch(
    labelSelector: string,
    resourceVersion: string,
    onEvent: (event: LeaseEvent) => void,
    signal: AbortSignal,
  ): Promise<{ ended: Promise<void> }>;
}

/**
 * Lists Leases at `path` (one namespace's, or all) by `labelSelector`, with the server's clock.
 * Without `timeoutMs` the client's own limit applies.
 */
export async function listLeases(
  client: KubeClient,
  path: string,
  labelSelector: string,
  timeoutMs?: number,
): Promise<LeaseList> {
  let serverTime: number | undefined;
  const list = await client.request<
    { items?: V1Lease[] | null; metadata?: { resourceVersion?: string } }
  >("GET", path, {
    query: { labelSelector },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    onHeaders: (h) => {
      const date = Date.parse(h.get("date") ?? "");
      if (!Number.isNaN(date)) serverTime = date;
    },
  });
  return {
    items: list.items ?? [],
    resourceVersion: list.metadata?.resourceVersion ?? "",
    ...(serverTime === undefined ? {} : { serverTime }),
  };
}

/** The real {@linkcode LeaseApi}, on `client` (one connection for every request). */
export function kubeLeaseApi(client: KubeClient, namespace: string): LeaseApi {
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const one = (name: string) => `${leases}/${encodeURIComponent(name)}`;
  return {
    list: (labelSelector) => listLeases(client, leases, labelSelector, timeoutMs),
    async get(name) {
      try {
        return await client.request<V1Lease>("GET", one(name), { timeoutMs });
      } catch (err) {
        if (isStatus(err, 404)) return undefined;
        throw err;
      }
    },
    create: (body) => client.request<V1Lease>("POST", leases, { body, timeoutMs }),
    replace: (body) =>
      client.request<V1Lease>("PUT", one(body.metadata?.name ?? ""), { body, timeoutMs }),
    async delete(name, preconditions) {
      await client.request("DELETE", one(name), {
        body: { apiVersion: "v1", kind: "DeleteOptions", preconditions },
        timeoutMs,
      });
    },
    watch: (labelSelector, resourceVersion, onEvent, signal) =>
      client.watch<LeaseEvent["object"]>(
        leases,
        {
          labelSelector,
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: 290, // How long the server keeps one watch open; a fresh one is cheap.
        },
        onEvent,
        signal,
      ),
  };
}

/**
 * `api` whose failures name their verb (`apiError()`: "Cannot delete leases ... forbidden"),
 * for helm-lock's own commands, which make several kinds of request. 404 and 409 pass as they
 * are: the callers handle them.
 */
export function namingFailures(
  api: LeaseApi,
  who: { namespace: string; user: string; server: string },
): LeaseApi {
  const named =
    <A extends unknown[], T>(verb: string, f: (...a: A) => Promise<T>) => (...a: A): Promise<T> =>
      f(...a).catch((err) => {
        if (isStatus(err, 404) || isStatus(err, 409)) throw err;
        throw apiError(err, { verb, resource: "leases", ...who });
      });
  return {
    list: named("list", api.list),
    get: named("get", api.get),
    create: named("create", api.create),
    replace: named("update", api.replace),
    delete: named("delete", api.delete),
    watch: named("watch", api.watch),
  };
}
