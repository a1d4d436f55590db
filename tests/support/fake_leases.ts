/**
 * A fake API server holding all the Leases of one namespace, for the deploy queue's unit
 * tests: resourceVersion, uid, delete preconditions, and list + watch by label selector
 * (`key=value` only) like the real one. `lease(name)` is the single-Lease view the lock
 * itself uses, on the same store.
 *
 * @module
 */

import { ApiException, type V1Lease } from "@kubernetes/client-node";
import type { LeaseApi, LeaseEvent } from "../../lib/lock/lease_api.ts";
import type { QueueApi } from "../../lib/lock/queue_api.ts";

function status(code: number, message: string): ApiException<string> {
  return new ApiException(code, message, JSON.stringify({ kind: "Status", code, message }), {});
}

interface Watcher {
  matches(lease: V1Lease): boolean;
  onEvent(e: LeaseEvent): void;
}

/** The Leases of one namespace on a fake API server. */
export class FakeLeases implements QueueApi {
  readonly leases = new Map<string, V1Lease>();
  /** Requests received, by operation. */
  readonly calls: Record<string, number> = {};
  /** While true, every request fails like an unreachable server. */
  down = false;
  #rv = 100;
  #uid = 0;
  readonly #watchers = new Set<Watcher>();

  #request(op: string): void {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
    if (this.down) throw new TypeError("fetch failed");
  }

  #clone(lease: V1Lease): V1Lease {
    return JSON.parse(JSON.stringify(lease));
  }

  #notify(type: string, lease: V1Lease): void {
    for (const w of this.#watchers) {
      if (w.matches(lease)) w.onEvent({ type, object: this.#clone(lease) });
    }
  }

  /** Writes or deletes a Lease as another client would. */
  put(name: string, lease: V1Lease | undefined): V1Lease | undefined {
    const old = this.leases.get(name);
    if (!lease) {
      this.leases.delete(name);
      if (old) this.#notify("DELETED", { ...old });
      return undefined;
    }
    const written = this.#clone({
      ...lease,
      metadata: {
        ...lease.metadata,
        name,
        uid: old?.metadata?.uid ?? `uid-${++this.#uid}`,
        resourceVersion: String(++this.#rv),
      },
    });
    this.leases.set(name, written);
    this.#notify(old ? "MODIFIED" : "ADDED", written);
    return this.#clone(written);
  }

  #try<T>(op: string, f: () => T): Promise<T> {
    try {
      this.#request(op);
      return Promise.resolve(f());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  get(name: string): Promise<V1Lease | undefined> {
    return this.#try("get", () => {
      const lease = this.leases.get(name);
      return lease && this.#clone(lease);
    });
  }

  create(body: V1Lease): Promise<V1Lease> {
    return this.#try("create", () => {
      const name = body.metadata?.name ?? "";
      if (this.leases.has(name)) throw status(409, "AlreadyExists");
      return this.put(name, body)!;
    });
  }

  replace(body: V1Lease): Promise<V1Lease> {
    return this.#try("replace", () => {
      const name = body.metadata?.name ?? "";
      const old = this.leases.get(name);
      if (!old) throw status(404, "NotFound");
      if (body.metadata?.resourceVersion !== old.metadata?.resourceVersion) {
        throw status(409, "Conflict");
      }
      return this.put(name, body)!;
    });
  }

  delete(name: string, pre: { uid: string; resourceVersion: string }): Promise<void> {
    return this.#try("delete", () => {
      const old = this.leases.get(name);
      if (!old) throw status(404, "NotFound");
      if (pre.uid !== old.metadata?.uid || pre.resourceVersion !== old.metadata?.resourceVersion) {
        throw status(409, "Conflict: precondition failed");
      }
      this.put(name, undefined);
    });
  }

  #selector(labelSelector: string): (lease: V1Lease) => boolean {
    const [key = "", value] = labelSelector.split("=");
    return (lease) => lease.metadata?.labels?.[key] === value;
  }

  list(labelSelector: string): Promise<{ items: V1Lease[]; resourceVersion: string }> {
    return this.#try("list", () => ({
      items: [...this.leases.values()].filter(this.#selector(labelSelector)).map((l) =>
        this.#clone(l)
      ),
      resourceVersion: String(this.#rv),
    }));
  }

  #watch(
    op: string,
    matches: (lease: V1Lease) => boolean,
    onEvent: (event: LeaseEvent) => void,
    signal: AbortSignal,
  ): Promise<{ ended: Promise<void> }> {
    return this.#try(op, () => {
      const { promise: ended, resolve } = Promise.withResolvers<void>();
      const watcher: Watcher = { matches, onEvent };
      this.#watchers.add(watcher);
      signal.addEventListener("abort", () => {
        this.#watchers.delete(watcher);
        resolve();
      }, { once: true });
      return { ended };
    });
  }

  watch(
    labelSelector: string,
    _resourceVersion: string,
    onEvent: (event: LeaseEvent) => void,
    signal: AbortSignal,
  ): Promise<{ ended: Promise<void> }> {
    return this.#watch("list-watch", this.#selector(labelSelector), onEvent, signal);
  }

  /** The single-Lease view the lock uses (`LeaseApi`), counted under `lock-*`. */
  lease(name: string): LeaseApi {
    return {
      get: () =>
        this.#try("lock-get", () => this.leases.get(name)).then((l) => l && this.#clone(l)),
      create: (body) => this.create({ ...body, metadata: { ...body.metadata, name } }),
      replace: (body) => this.replace({ ...body, metadata: { ...body.metadata, name } }),
      delete: (pre) => this.delete(name, pre),
      watch: (_rv, onEvent, signal) =>
        this.#watch("lock-watch", (l) => l.metadata?.name === name, onEvent, signal),
    };
  }
}
