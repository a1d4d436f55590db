/**
 * Unit tests of the deploy queue on a fake clock and a fake API server holding all Leases of
 * the namespace: several waiters in one process, nothing waits for real time.
 */
import assert from "node:assert/strict";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { Annotation } from "../../lib/lock/identity.ts";
import { countingApi } from "../../lib/lock/lease_api.ts";
import type { WaitProgress } from "../../lib/lock/options.ts";
import {
  acquireInOrder,
  isSuperseded,
  ordinal,
  QueueAnnotation,
  type QueuedLock,
  type QueueOptions,
  queueOrder,
  QueueTimings,
  stateLeaseName,
  type Ticket,
  ticketLeaseName,
} from "../../lib/lock/queue.ts";
import { FakeClock, unusedClient } from "../support/fake_lease.ts";
import { FakeLeases } from "../support/fake_leases.ts";

const LOCK = "helm-lock-app";
const LEASE_S = 15;
const job = (n: number | string) => `https://gitlab.example/acme/app/-/jobs/${n}`;

function setup() {
  const clock = new FakeClock();
  const store = new FakeLeases();
  const options = (name: string, extra: Partial<QueueOptions> = {}): QueueOptions => ({
    client: unusedClient,
    namespace: "prod",
    release: "app",
    identity: `runner-${name}`,
    annotations: { [Annotation.ciJobUrl]: job(name), [Annotation.command]: "upgrade app" },
    timeoutMs: 3_600_000,
    leaseDurationSeconds: LEASE_S,
    api: store.lease(LOCK),
    queueApi: store,
    clock,
    sleep: clock.sleep,
    random: () => 0.5,
    user: "ci",
    server: "https://k8s.example:6443",
    ...extra,
  });
  /** Starts a waiter and records when (on the fake clock) it settled. */
  const start = (name: string, extra: Partial<QueueOptions> = {}) => {
    const state: { lock?: QueuedLock; error?: unknown; at?: number; progress: WaitProgress[] } = {
      progress: [],
    };
    const opts = options(name, { onProgress: (p) => state.progress.push(p), ...extra });
    acquireInOrder(opts).then(
      (lock) => Object.assign(state, { lock, at: clock.now() }),
      (error) => Object.assign(state, { error, at: clock.now() }),
    );
    return state;
  };
  return { clock, store, options, start };
}

/** A ticket whose waiter died right after taking it: never renewed. */
function deadTicket(store: FakeLeases, n: number, name = "dead"): void {
  // Absent while every job so far took the lock on the fast path.
  const state = store.leases.get(stateLeaseName("app")) ?? {};
  store.put(stateLeaseName("app"), {
    ...state,
    metadata: {
      ...state.metadata,
      annotations: { ...state.metadata?.annotations, [QueueAnnotation.nextTicket]: String(n + 1) },
    },
  });
  store.put(ticketLeaseName("app", n), {
    metadata: {
      labels: { "helm-lock.dev/queue": "app" },
      annotations: {
        [Annotation.ciJobUrl]: job(name),
        [QueueAnnotation.ticket]: String(n),
        [QueueAnnotation.mode]: "fifo",
        [QueueAnnotation.state]: "waiting",
      },
    },
    spec: { holderIdentity: `runner-${name}`, leaseDurationSeconds: QueueTimings.ticketSeconds },
  });
}

Deno.test("acquireInOrder() hands the lock to waiters in the order they came", async () => {
  const { clock, start } = setup();
  const first = start("1");
  await clock.flush();
  assert.ok(first.lock);
  const waiters: ReturnType<typeof start>[] = [];
  for (const n of ["2", "3", "4", "5"]) {
    waiters.push(start(n));
    await clock.advance(200);
  }
  // The first found the queue empty and took the lock without a ticket; the others queued.
  assert.equal(first.lock.ticket, undefined);
  const order: number[] = [];
  let holder = first;
  for (let turn = 0; turn < waiters.length; turn++) {
    await holder.lock!.release();
    await clock.flush();
    const next = waiters.filter((w) => w.lock && !order.includes(waiters.indexOf(w)));
    assert.equal(next.length, 1, `turn ${turn}: exactly one waiter took the lock at once`);
    holder = next[0]!;
    order.push(waiters.indexOf(holder));
  }
  assert.deepEqual(order, [0, 1, 2, 3]);
  assert.deepEqual(waiters.map((w) => w.lock?.ticket), [1, 2, 3, 4]);
  await holder.lock!.release();
});

Deno.test("acquireInOrder() tells each waiter its place and who is ahead of it", async () => {
  const { clock, start } = setup();
  const first = start("1");
  await clock.flush();
  const second = start("2");
  await clock.flush();
  const third = start("3");
  await clock.advance(11_000);
  assert.equal(second.progress.at(-1)?.queue?.place, 1);
  const progress = third.progress.at(-1);
  assert.equal(progress?.queue?.place, 2);
  assert.equal(progress?.queue?.ahead?.ciJobUrl, job("2"));
  assert.equal(progress?.holder.ciJobUrl, job("1"));
  assert.equal(ordinal(2), "2nd");
  await first.lock!.release();
  await clock.flush();
  await second.lock!.release();
  await clock.flush();
  await third.lock!.release();
});

Deno.test("acquireInOrder() passes a dead waiter after one lease duration, not before", async () => {
  const { clock, store, start } = setup();
  const first = start("1");
  await clock.flush();
  deadTicket(store, 2);
  const third = start("3");
  await clock.advance(1_000);
  await first.lock!.release();
  const releasedAt = clock.now();
  await clock.advance(LEASE_S * 1000 - 100);
  assert.equal(!!third.lock, false, "waited for the dead waiter's turn");
  await clock.advance(200);
  assert.ok(third.lock);
  assert.ok(third.at! - releasedAt <= LEASE_S * 1000, `took ${third.at! - releasedAt} ms`);
  await third.lock.release();
});

Deno.test("acquireInOrder() deletes a ticket that was not renewed for its duration", async () => {
  const { clock, store, start } = setup();
  const first = start("1");
  await clock.flush();
  deadTicket(store, 2);
  const third = start("3");
  await clock.advance(1_000);
  assert.ok(store.leases.has(ticketLeaseName("app", 2)));
  await clock.advance(QueueTimings.ticketSeconds * 1000);
  assert.equal(store.leases.has(ticketLeaseName("app", 2)), false);
  // The live waiter renewed its own ticket all along.
  assert.ok(store.leases.has(ticketLeaseName("app", 3)));
  // Now first in line: it takes the lock the moment it is released.
  await first.lock!.release();
  await clock.flush();
  assert.ok(third.lock);
  await third.lock.release();
  assert.deepEqual(
    [...store.leases.keys()],
    [stateLeaseName("app")],
    "nothing but the state is left",
  );
});

Deno.test("acquireInOrder() newest: only the newest waiter runs; older ones are superseded naming it", async () => {
  const { clock, start } = setup();
  const first = start("1");
  await clock.flush();
  const waiters: ReturnType<typeof start>[] = [];
  for (const n of ["2", "3", "4", "5"]) {
    waiters.push(start(n, { mode: "newest" }));
    await clock.advance(200);
  }
  assert.ok(waiters.every((w) => !w.lock && !w.error));
  await first.lock!.release();
  await clock.flush();
  const [w2, w3, w4, w5] = waiters;
  assert.ok(w5!.lock, "the newest waiter holds the lock");
  for (const w of [w2!, w3!, w4!]) {
    assert.equal(!!w.lock, false);
    assert.ok(w.error instanceof HelmLockError);
    assert.equal(w.error.code, ExitCode.Superseded);
    assert.ok(isSuperseded(w.error));
    assert.match(w.error.message, /superseded/);
    assert.ok(w.error.message.includes(job("5")), w.error.message);
  }
  await w5!.lock!.release();
});

Deno.test("acquireInOrder() refuses an order key lower than the last deploy's, writing no ticket", async () => {
  const { clock, store, start } = setup();
  const ten = start("10", { orderKey: 10 });
  await clock.flush();
  await ten.lock!.recordDeploy();
  await ten.lock!.release();
  const state = store.leases.get(stateLeaseName("app"))?.metadata?.annotations ?? {};
  assert.equal(state[QueueAnnotation.deployedKey], "10");
  const nine = start("9", { orderKey: 9 });
  await clock.flush();
  assert.ok(nine.error instanceof HelmLockError);
  assert.equal(nine.error.code, ExitCode.Superseded);
  assert.equal(isSuperseded(nine.error), false);
  assert.match(nine.error.message, /outdated/);
  assert.ok(nine.error.message.includes(job("10")), nine.error.message);
  assert.deepEqual([...store.leases.keys()], [stateLeaseName("app")]);
  const eleven = start("11", { orderKey: 11 });
  await clock.flush();
  assert.ok(eleven.lock);
  await eleven.lock.release();
});

Deno.test("acquireInOrder() orders keyed waiters by key, and refuses one outdated while it waited", async () => {
  const { clock, start } = setup();
  const first = start("1");
  await clock.flush();
  const twelve = start("12", { orderKey: 12 });
  await clock.advance(200);
  const eleven = start("11", { orderKey: 11 });
  await clock.advance(200);
  await first.lock!.release();
  await clock.flush();
  assert.ok(eleven.lock, "key 11 goes first, though it came later");
  assert.equal(!!twelve.lock, false);
  await eleven.lock.release();
  await clock.flush();
  assert.ok(twelve.lock);
  await twelve.lock.recordDeploy();
  // A key-11 job that queued behind 12 finds itself outdated once it holds the lock.
  const late = start("11b", { orderKey: 11 });
  await clock.flush();
  assert.ok(late.error instanceof HelmLockError);
  assert.match(late.error.message, /outdated: expected at least 12/);
  await twelve.lock.release();
});

Deno.test("acquireInOrder() sends at most 6 requests a minute while waiting behind a holder", async () => {
  const { clock, store, options } = setup();
  const holder = await acquireInOrder(options("1"));
  const lock = countingApi(store.lease(LOCK));
  const queue = countingApi(store);
  let lockAt = 0;
  const waiting = acquireInOrder(options("2", { api: lock.api, queueApi: queue.api })).then(
    (l) => {
      lockAt = clock.now();
      return l;
    },
  );
  await clock.advance(1_000);
  const before = lock.count() + queue.count();
  await clock.advance(10 * 60_000);
  const perMinute = (lock.count() + queue.count() - before) / 10;
  assert.ok(perMinute <= 6, `${perMinute} requests a minute`);
  assert.ok(perMinute >= 3, `${perMinute} requests a minute: is the ticket renewed at all?`);
  await holder.release();
  const startedAt = clock.now();
  await clock.flush();
  const held = await waiting;
  assert.equal(lockAt, startedAt, "took the lock at once");
  await held.release();
});

Deno.test("acquireInOrder() leaves the queue when aborted", async () => {
  const { clock, store, options } = setup();
  const holder = await acquireInOrder(options("1"));
  const abort = new AbortController();
  const waiting = acquireInOrder(options("2", { signal: abort.signal }));
  await clock.advance(1_000);
  // The holder found the queue empty and took no ticket: the waiter's is the first.
  assert.ok(store.leases.has(ticketLeaseName("app", 1)));
  abort.abort(new Error("Ctrl-C"));
  await assert.rejects(waiting, /Ctrl-C/);
  assert.equal(store.leases.has(ticketLeaseName("app", 1)), false);
  await holder.release();
});

const t = (n: number, extra: Partial<Ticket> = {}): Ticket => ({
  n,
  mode: "fifo",
  holding: false,
  info: { identity: `id-${n}` },
  ...extra,
});

Deno.test("queueOrder() puts keyless tickets behind the keys that came before them", () => {
  const order = queueOrder([t(1, { key: 10 }), t(2), t(3, { key: 9 }), t(4, { key: 11 })]);
  assert.deepEqual(order.map((x) => x.n), [3, 1, 2, 4]);
});

Deno.test("queueOrder() lets newest tickets with a newer one behind them yield, newest first", () => {
  const order = queueOrder([
    t(1, { holding: true }),
    t(2, { mode: "newest" }),
    t(3, { mode: "newest" }),
    t(4, { mode: "newest" }),
  ]);
  assert.deepEqual(order.map((x) => x.n), [4, 3, 2]);
});
