/**
 * A fake clock and a fake API server holding one Lease, for the lock's unit tests: time
 * only moves when a test advances it, and the fake server keeps resourceVersion,
 * uid and delete-precondition semantics like the real one.
 *
 * @module
 */

import { ApiException, type V1Lease } from "@kubernetes/client-node";
import type { LeaseApi, LeaseEvent } from "../../lib/lock/lease_api.ts";
import type { KubeClient } from "../../lib/kube/rest.ts";
import type { Clock, Sleep } from "../../lib/lock/lock.ts";

interface Timer {
  at: number;
  resolve: () => void;
}

/** A clock that moves only in {@linkcode FakeClock.advance}. */
export class FakeClock implements Clock {
  #now = 1_000_000;
  readonly #epoch = Date.parse("2026-03-01T12:00:00Z") - this.#now;
  #timers: Timer[] = [];

  now = (): number => this.#now;
  date = (): Date => new Date(this.#epoch + this.#now);

  sleep: Sleep = (ms, signal) => {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const timer: Timer = {
        at: this.#now + Math.max(0, ms),
        resolve: () => {
          signal.removeEventListener("abort", abort);
          resolve();
        },
      };
      const abort = () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        reject(signal.reason);
      };
      signal.addEventListener("abort", abort, { once: true });
      this.#timers.push(timer);
    });
  };

  /** Lets every pending promise chain run (a few real event-loop turns, no waiting). */
  async flush(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  }

  /** Moves time forward by `ms`, firing timers in order and letting their work run. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await this.flush();
      const due = this.#timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.resolve();
    }
    this.#now = target;
    await this.flush();
  }
}

/** A network failure like undici's. */
export function networkError(): Error {
  return new TypeError("fetch failed", {
    cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
  });
}

function status(code: number, message: string): ApiException<string> {
  return new ApiException(code, message, JSON.stringify({ kind: "Status", code, message }), {});
}

type Op = "get" | "create" | "replace" | "delete" | "watch";

/** Thrown inside the fake to mean "never answer". */
const HANG = Symbol("hang");
const never = new Promise<never>(() => {});

/** One Lease on a fake API server. */
export class FakeLeaseServer implements LeaseApi {
  lease: V1Lease | undefined;
  /** Requests received, by operation. */
  readonly calls: Record<Op, number> = { get: 0, create: 0, replace: 0, delete: 0, watch: 0 };
  /** Delete preconditions received. */
  readonly deletes: { uid: string; resourceVersion: string }[] = [];
  /** While true, every request fails like an unreachable server. */
  down = false;
  /** While true, watches fail to open (the fallback poll must do). */
  watchDown = false;
  /** Operations whose requests never get an answer (a stalled connection). */
  readonly hang = new Set<Op>();
  /** Errors the next requests of an operation throw, in order. */
  readonly failures: Partial<Record<Op, unknown[]>> = {};
  #stalled: PromiseWithResolvers<void> | undefined;
  #rv = 100;
  #uid = 0;
  #watchers = new Set<(e: LeaseEvent) => void>();

  /**
   * Stops answering, like a SIGSTOPped API server: requests received meanwhile are served,
   * in order, when the returned function is called.
   */
  stall(): () => void {
    const stalled = this.#stalled = Promise.withResolvers<void>();
    return () => {
      if (this.#stalled === stalled) this.#stalled = undefined;
      stalled.resolve();
    };
  }

  /** Holds `serve` until a stall ends (see {@linkcode stall}). */
  #served<T>(serve: () => Promise<T>): Promise<T> {
    const stalled = this.#stalled;
    return stalled ? stalled.promise.then(serve) : serve();
  }

  #request(op: Op): void {
    this.calls[op]++;
    if (this.hang.has(op)) throw HANG;
    const next = this.failures[op]?.shift();
    if (next !== undefined) throw next;
    if (this.down) throw networkError();
  }

  #clone(lease: V1Lease): V1Lease {
    // Through JSON, as over the wire: times become RFC 3339 strings.
    return JSON.parse(JSON.stringify(lease));
  }

  #notify(type: string, lease: V1Lease): void {
    for (const w of this.#watchers) w({ type, object: this.#clone(lease) });
  }

  /** Writes the Lease as another client would (a holder elsewhere, an admin). */
  put(lease: V1Lease | undefined): void {
    const old = this.lease;
    if (!lease) {
      this.lease = undefined;
      if (old) this.#notify("DELETED", { ...old });
      return;
    }
    this.lease = this.#clone({
      ...lease,
      metadata: {
        ...lease.metadata,
        name: lease.metadata?.name ?? old?.metadata?.name ?? "helm-lock-app",
        uid: old?.metadata?.uid ?? `uid-${++this.#uid}`,
        resourceVersion: String(++this.#rv),
      },
    });
    this.#notify(old ? "MODIFIED" : "ADDED", this.lease);
  }

  /** Renews the current holder's Lease, as a live holder elsewhere does. */
  renew(renewTime: Date): void {
    if (!this.lease) throw new Error("No Lease to renew");
    this.put({ ...this.lease, spec: { ...this.lease.spec, renewTime: renewTime as never } });
  }

  /** Ends all open watches, as an API server restart would. */
  breakWatches(): void {
    for (const w of this.#watchers) w({ type: "__END__", object: {} });
  }

  get(): Promise<V1Lease | undefined> {
    return this.#served(() => this.#get());
  }

  #get(): Promise<V1Lease | undefined> {
    try {
      this.#request("get");
      return Promise.resolve(this.lease && this.#clone(this.lease));
    } catch (err) {
      return err === HANG ? never : Promise.reject(err);
    }
  }

  create(body: V1Lease): Promise<V1Lease> {
    return this.#served(() => this.#create(body));
  }

  #create(body: V1Lease): Promise<V1Lease> {
    try {
      this.#request("create");
      if (this.lease) throw status(409, "AlreadyExists");
      this.put(body);
      return Promise.resolve(this.#clone(this.lease!));
    } catch (err) {
      return err === HANG ? never : Promise.reject(err);
    }
  }

  replace(body: V1Lease): Promise<V1Lease> {
    return this.#served(() => this.#replace(body));
  }

  #replace(body: V1Lease): Promise<V1Lease> {
    try {
      this.#request("replace");
      if (!this.lease) throw status(404, "NotFound");
      if (body.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) {
        throw status(409, "Conflict");
      }
      this.put(body);
      return Promise.resolve(this.#clone(this.lease!));
    } catch (err) {
      return err === HANG ? never : Promise.reject(err);
    }
  }

  delete(preconditions: { uid: string; resourceVersion: string }): Promise<void> {
    return this.#served(() => this.#delete(preconditions));
  }

  #delete(preconditions: { uid: string; resourceVersion: string }): Promise<void> {
    try {
      this.#request("delete");
      this.deletes.push(preconditions);
      if (!this.lease) throw status(404, "NotFound");
      const meta = this.lease.metadata ?? {};
      if (
        preconditions.uid !== meta.uid || preconditions.resourceVersion !== meta.resourceVersion
      ) {
        throw status(409, "Conflict: precondition failed");
      }
      this.put(undefined);
      return Promise.resolve();
    } catch (err) {
      return err === HANG ? never : Promise.reject(err);
    }
  }

  watch(
    _resourceVersion: string,
    onEvent: (event: LeaseEvent) => void,
    signal: AbortSignal,
  ): Promise<{ ended: Promise<void> }> {
    try {
      this.#request("watch");
      if (this.watchDown) throw networkError();
    } catch (err) {
      return err === HANG ? never : Promise.reject(err);
    }
    const { promise: ended, resolve } = Promise.withResolvers<void>();
    const watcher = (e: LeaseEvent) => {
      if (e.type === "__END__") return end();
      onEvent(e);
    };
    const end = () => {
      this.#watchers.delete(watcher);
      resolve();
    };
    this.#watchers.add(watcher);
    signal.addEventListener("abort", end, { once: true });
    return Promise.resolve({ ended });
  }
}

/** A client for lock tests whose Lease API is a fake: any request through it is a bug. */
export const unusedClient: KubeClient = {
  server: "https://unused.example",
  user: "unused",
  request: () => Promise.reject(new Error("unusedClient: no request expected")),
  watch: () => Promise.reject(new Error("unusedClient: no watch expected")),
  close: () => {},
};
