/**
 * The release's Leases: the requests on them, and an informer-like cache kept by one list and
 * one watch by label (docs/design.md §2).
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { type ApiAction, apiError, isStatus } from "../kube/api_error.ts";
import type { KubeClient } from "../kube/rest.ts";

/** A watch event: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR` (then a `Status`). */
export interface LeaseEvent {
  type: string;
  object: V1Lease & { code?: number };
}

/** `serverTime`: the server's clock (`Date` header, epoch ms). */
export interface LeaseList {
  items: V1Lease[];
  resourceVersion: string;
  serverTime?: number;
}

/** Time and chance, injected so that unit tests need no real waiting. */
export interface Timing {
  /** `now()`: monotonic ms, for durations; `date()`: the wall clock, for what Leases record. */
  clock: { now(): number; date(): Date };
  /** Waits `ms`; rejects with `signal.reason` when `signal` aborts. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Source of jitter, in [0, 1). */
  random: () => number;
}

/** A request is abandoned after this long, so a dead connection does not stall renewals. */
export const REQUEST_LIMIT_MS = 10_000;

/** Who makes a Lease request, as an error names it. */
export interface Actor {
  namespace: string;
  user: string;
  server: string;
}

export function action(who: Actor, verb: string): ApiAction {
  return { verb, resource: "leases", ...who };
}

/** Lease requests on one namespace; failures are `ApiStatusError`s (`code`) or network errors. */
export interface LeaseApi {
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

/** Lists Leases at `path` (one namespace's, or all); without `timeoutMs`, the client's limit. */
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
  const timeoutMs = REQUEST_LIMIT_MS;
  return {
    list: (labelSelector) => listLeases(client, leases, labelSelector, timeoutMs),
    get: (name) =>
      client.request<V1Lease>("GET", one(name), { timeoutMs }).catch((err) => {
        if (isStatus(err, 404)) return undefined;
        throw err;
      }),
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

/** `api` whose failures name their verb ("Cannot delete leases ..."), but for 404 and 409. */
export function namingFailures(
  api: LeaseApi,
  who: Actor,
): Pick<LeaseApi, "list" | "get" | "delete"> {
  const named =
    <A extends unknown[], T>(verb: string, f: (...a: A) => Promise<T>) => (...a: A): Promise<T> =>
      f(...a).catch((err) => {
        if (isStatus(err, 404) || isStatus(err, 409)) throw err;
        throw apiError(err, action(who, verb));
      });
  return {
    list: named("list", api.list),
    get: named("get", api.get),
    delete: named("delete", api.delete),
  };
}

/** Waits between attempts to re-open a failed watch (each begins with a list). */
const RETRY_MS = [1_000, 2_000, 5_000, 10_000, 15_000];
/** A watch that ends sooner than this without events counts as failed (backs off). */
const MIN_USEFUL_MS = 5_000;

/** Compares resourceVersions as integers (docs/design.md §2); `undefined` if either is not. */
export function compareVersions(a: string | undefined, b: string | undefined): number | undefined {
  const int = /^[1-9][0-9]*$/;
  if (!a || !b || !int.test(a) || !int.test(b)) return undefined;
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The Leases of one label selector, as last heard from the API server. */
export class LeaseCache {
  /** Dispatches `change` when a Lease or the watch's state changed. */
  readonly changes = new EventTarget();
  readonly #api: LeaseApi;
  readonly #selector: string;
  readonly #t: Timing;
  /** Each Lease, and when (local ms) its current version was first seen. */
  readonly #objects = new Map<string, { lease: V1Lease; seenAt: number }>();
  readonly #deleted = new Map<string, number>();
  readonly #stop = new AbortController();
  #rv = "";
  #server: { time: number; at: number } | undefined;
  #watching = false;
  #relist = false;
  #syncedAt = -Infinity;
  #loop: Promise<void> | undefined;

  constructor(api: LeaseApi, selector: string, timing: Timing) {
    this.#api = api;
    this.#selector = selector;
    this.#t = timing;
  }

  async list(): Promise<void> {
    this.load(await this.#api.list(this.#selector));
  }

  load(list: LeaseList): void {
    const now = this.#t.clock.now();
    const names = new Set<string>();
    for (const lease of list.items) {
      const name = lease.metadata?.name ?? "";
      names.add(name);
      this.#set(name, lease, now);
    }
    for (const [name, entry] of this.#objects) {
      // A write of ours newer than the list stays (the list began before it landed).
      const newer = compareVersions(entry.lease.metadata?.resourceVersion, list.resourceVersion);
      if (!names.has(name) && !(newer !== undefined && newer > 0)) this.#remove(name, now);
    }
    this.#rv = list.resourceVersion;
    if (list.serverTime !== undefined) this.#server = { time: list.serverTime, at: now };
    this.#syncedAt = now;
    this.#notify();
  }

  /** Watches from the last list until {@linkcode stop}. */
  start(): void {
    this.#loop ??= this.#run();
  }

  stop(): void {
    this.#stop.abort();
    this.#loop?.catch(() => {});
  }

  get(name: string): V1Lease | undefined {
    return this.#objects.get(name)?.lease;
  }

  seenAt(name: string): number | undefined {
    return this.#objects.get(name)?.seenAt;
  }

  /** When `name` was seen deleted, if it was and has not come back. */
  deletedAt(name: string): number | undefined {
    return this.#deleted.get(name);
  }

  values(): V1Lease[] {
    return [...this.#objects.values()].map((e) => e.lease);
  }

  get watching(): boolean {
    return this.#watching;
  }

  /** When the API server last told us the state (a list or a watch event; local ms). */
  get syncedAt(): number {
    return this.#syncedAt;
  }

  /** The API server's clock now (epoch ms), from its last list's `Date` and our elapsed time. */
  serverNow(): number | undefined {
    return this.#server && this.#server.time + (this.#t.clock.now() - this.#server.at);
  }

  /** A write of ours, answered: known from now on (events of older versions are ignored). */
  put(lease: V1Lease): void {
    this.#set(lease.metadata?.name ?? "", lease, this.#t.clock.now());
    this.#notify();
  }

  /** A delete of ours, answered. */
  drop(name: string): void {
    this.#remove(name, this.#t.clock.now());
    this.#notify();
  }

  #set(name: string, lease: V1Lease, now: number): void {
    const old = this.#objects.get(name);
    const rv = lease.metadata?.resourceVersion;
    const order = compareVersions(rv, old?.lease.metadata?.resourceVersion);
    if (old && order !== undefined && order < 0) return; // an older version than we know
    this.#deleted.delete(name);
    const same = old && old.lease.metadata?.resourceVersion === rv;
    this.#objects.set(name, { lease, seenAt: same ? old.seenAt : now });
  }

  #remove(name: string, now: number): void {
    if (this.#objects.delete(name)) this.#deleted.set(name, now);
  }

  #notify(): void {
    this.changes.dispatchEvent(new Event("change"));
  }

  #onEvent = (event: LeaseEvent): void => {
    const now = this.#t.clock.now();
    const rv = event.object?.metadata?.resourceVersion;
    const name = event.object?.metadata?.name ?? "";
    switch (event.type) {
      case "ADDED":
      case "MODIFIED":
        this.#set(name, event.object, now);
        break;
      case "DELETED":
        this.#remove(name, now);
        break;
      case "BOOKMARK":
        if (rv) this.#rv = rv;
        return;
      default:
        // ERROR, e.g. 410 Gone: too old to resume from; list afresh.
        this.#relist = true;
        return;
    }
    if (rv) this.#rv = rv;
    this.#syncedAt = now;
    this.#notify();
  };

  async #run(): Promise<void> {
    const { clock, sleep, random } = this.#t;
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      const openedAt = clock.now();
      let events = 0;
      let opened = false;
      try {
        if (this.#relist) {
          await this.list();
          this.#relist = false;
        }
        const { ended } = await this.#api.watch(this.#selector, this.#rv, (e) => {
          events++;
          this.#onEvent(e);
        }, signal);
        opened = this.#watching = true;
        this.#notify();
        await ended;
      } catch {
        this.#relist = true;
      }
      this.#watching = false;
      if (signal.aborted) return;
      this.#notify();
      if (opened && !this.#relist && (events > 0 || clock.now() - openedAt >= MIN_USEFUL_MS)) {
        failures = 0;
        continue;
      }
      this.#relist = true;
      const wait = RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]!;
      await sleep(wait * (0.75 + 0.5 * random()), signal).catch(() => {});
    }
  }
}
