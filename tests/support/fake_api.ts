/**
 * A fake clock and a fake API server holding the Leases of one namespace, for the unit tests of
 * the lock's timing logic: time only moves when a test advances it, and the server keeps what
 * the real one keeps (resourceVersion, uid, `generateName`, delete preconditions, a list's
 * `Date`, `managedFields` times, watches resumed from a resourceVersion). End-to-end claims are
 * proven against the real API server, never here.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import type { LeaseApi, LeaseEvent, LeaseList, Timing } from "../../lib/lock/cache.ts";
import type { KubeClient } from "../../lib/kube/rest.ts";
import { ApiStatusError } from "../../lib/kube/rest.ts";

type Clock = Timing["clock"];

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

  sleep: Timing["sleep"] = (ms, signal) => {
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

  /** The injected time of the lock (`Timing`), with jitter fixed at its middle. */
  get timing(): Timing {
    return { clock: this, sleep: this.sleep, random: () => 0.5 };
  }

  /** Lets every pending promise chain run (a few real event-loop turns, no waiting). */
  async flush(): Promise<void> {
    for (let i = 0; i < 8; i++) await new Promise((r) => setTimeout(r, 0));
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

/** An answer of the fake server other than 2xx. */
export function status(code: number, message = `HTTP ${code}`): ApiStatusError {
  return new ApiStatusError(code, { kind: "Status", code, message });
}

/** A network failure like Deno's fetch's. */
export function networkError(): Error {
  const err = new Error("connect ECONNREFUSED 127.0.0.1:6443");
  err.name = "KubeNetworkError";
  return err;
}

/** Whole seconds, as the API server writes timestamps. */
function seconds(date: Date): string {
  return new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

interface Watcher {
  selector: string;
  onEvent(e: LeaseEvent): void;
  end(): void;
}

/** The Leases of one namespace on a fake API server. */
export class FakeApi implements LeaseApi {
  readonly leases = new Map<string, V1Lease>();
  /** Requests received, by operation. */
  readonly calls: Record<string, number> = {};
  /** While true, every request fails like an unreachable server. */
  down = false;
  /** While set, every request of these operations fails with this (or hangs, for "hang"). */
  readonly failing = new Map<string, Error | "hang">();
  /** Errors the next requests of an operation fail with, in order (then they are served). */
  readonly failures: Record<string, Error[]> = {};
  /** Delete preconditions received, in order. */
  readonly deletes: { name: string; uid: string; resourceVersion: string }[] = [];
  /** Watches fail to open while true (a Role without `watch`). */
  noWatch = false;
  /** The server's clock is this far ahead of the client's (ms). */
  skewMs = 0;
  readonly #clock: FakeClock;
  #rv = 100;
  #uid = 0;
  #generated = 0;
  readonly #history: LeaseEvent[] = [];
  readonly #watchers = new Set<Watcher>();
  #stalled: PromiseWithResolvers<void> | undefined;

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  /** Every request any client made. */
  get requests(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  #serverDate(): Date {
    return new Date(this.#clock.date().getTime() + this.skewMs);
  }

  #clone<T>(value: T): T {
    return JSON.parse(JSON.stringify(value));
  }

  #notify(type: string, lease: V1Lease): void {
    const event = { type, object: this.#clone(lease) };
    this.#history.push(event);
    for (const w of this.#watchers) {
      if (matches(w.selector, lease)) w.onEvent(this.#clone(event));
    }
  }

  /** Writes (or with `undefined` deletes) a Lease as another client would. */
  put(name: string, lease: V1Lease | undefined): V1Lease | undefined {
    const old = this.leases.get(name);
    if (!lease) {
      if (!old) return undefined;
      this.leases.delete(name);
      this.#notify("DELETED", {
        ...old,
        metadata: { ...old.metadata, resourceVersion: String(++this.#rv) },
      });
      return undefined;
    }
    const now = seconds(this.#serverDate());
    const written = this.#clone({
      ...lease,
      metadata: {
        ...lease.metadata,
        name,
        namespace: "prod",
        uid: old?.metadata?.uid ?? `uid-${++this.#uid}`,
        resourceVersion: String(++this.#rv),
        creationTimestamp: old?.metadata?.creationTimestamp ?? now,
        managedFields: [{ manager: "helm-lock", operation: "Update", time: now }],
      },
    }) as unknown as V1Lease;
    this.leases.set(name, written);
    this.#notify(old ? "MODIFIED" : "ADDED", written);
    return this.#clone(written);
  }

  /**
   * Stops answering, like a SIGSTOPped API server: requests received meanwhile are served, in
   * order, when the returned function is called (their answers arrive late).
   */
  stall(): () => void {
    const stalled = this.#stalled = Promise.withResolvers<void>();
    return () => {
      if (this.#stalled === stalled) this.#stalled = undefined;
      stalled.resolve();
    };
  }

  #try<T>(op: string, f: () => T): Promise<T> {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
    const serve = (): Promise<T> => {
      const failure = this.failing.get(op);
      if (failure === "hang") return new Promise(() => {});
      const next = this.failures[op]?.shift();
      if (next) return Promise.reject(next);
      if (failure) return Promise.reject(failure);
      if (this.down) return Promise.reject(networkError());
      try {
        return Promise.resolve(f());
      } catch (err) {
        return Promise.reject(err);
      }
    };
    const stalled = this.#stalled;
    return stalled ? stalled.promise.then(serve) : serve();
  }

  list(labelSelector: string): Promise<LeaseList> {
    return this.#try("list", () => ({
      items: [...this.leases.values()].filter((l) => matches(labelSelector, l)).map((l) =>
        this.#clone(l)
      ),
      resourceVersion: String(this.#rv),
      serverTime: Date.parse(seconds(this.#serverDate())),
    }));
  }

  get(name: string): Promise<V1Lease | undefined> {
    return this.#try("get", () => {
      const lease = this.leases.get(name);
      return lease && this.#clone(lease);
    });
  }

  create(body: V1Lease): Promise<V1Lease> {
    return this.#try("create", () => {
      const prefix = body.metadata?.generateName;
      // As the API server validates it: a DNS subdomain once a trailing "-" is masked.
      if (prefix !== undefined && !DNS_SUBDOMAIN.test(prefix.replace(/-$/, "a"))) {
        throw status(422, `metadata.generateName: Invalid value: "${prefix}"`);
      }
      const name = body.metadata?.name ??
        `${body.metadata?.generateName ?? ""}${(++this.#generated).toString(36).padStart(5, "0")}`;
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
      this.deletes.push({ name, ...pre });
      const old = this.leases.get(name);
      if (!old) throw status(404, "NotFound");
      if (pre.uid !== old.metadata?.uid || pre.resourceVersion !== old.metadata?.resourceVersion) {
        throw status(409, "Conflict: precondition failed");
      }
      this.put(name, undefined);
    });
  }

  watch(
    labelSelector: string,
    resourceVersion: string,
    onEvent: (event: LeaseEvent) => void,
    signal: AbortSignal,
  ): Promise<{ ended: Promise<void> }> {
    return this.#try("watch", () => {
      if (this.noWatch) throw status(403, "watch is forbidden");
      const { promise: ended, resolve } = Promise.withResolvers<void>();
      const watcher: Watcher = {
        selector: labelSelector,
        onEvent,
        end: () => {
          this.#watchers.delete(watcher);
          resolve();
        },
      };
      // Events after the resourceVersion the client knows, then live ones.
      const from = Number(resourceVersion || this.#rv);
      for (const e of this.#history) {
        if (Number(e.object.metadata?.resourceVersion) > from && matches(labelSelector, e.object)) {
          queueMicrotask(() => onEvent(this.#clone(e)));
        }
      }
      this.#watchers.add(watcher);
      signal.addEventListener("abort", watcher.end, { once: true });
      return { ended };
    });
  }

  /** Ends every open watch (a server timeout, a dropped connection). */
  breakWatches(): void {
    for (const w of [...this.#watchers]) w.end();
  }

  /** Open watches. */
  get watches(): number {
    return this.#watchers.size;
  }
}

const DNS_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function matches(selector: string, lease: V1Lease): boolean {
  const [key = "", value] = selector.split("=");
  return lease.metadata?.labels?.[key] === value;
}

/** A client for options that need one but whose requests go to a fake `LeaseApi`. */
export const unusedClient: KubeClient = {
  server: "https://k8s.example:6443",
  user: "ci",
  request: () => Promise.reject(new Error("unused")),
  watch: () => Promise.reject(new Error("unused")),
  close: () => {},
};
