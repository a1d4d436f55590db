/**
 * Unit tests of the lock's queue and wait (`lib/lock/take.ts`) on a fake clock and a fake API
 * server: several jobs in one process, nothing waits for real time. The real API server and
 * real processes prove the same end to end in tests/lock/queue_e2e_test.ts.
 */
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { Annotation } from "../../lib/lock/identity.ts";
import { lockName, releaseLabels, stateName, ticketPrefix } from "../../lib/lock/names.ts";
import { RecordAnnotation } from "../../lib/lock/record.ts";
import type { WaitProgress } from "../../lib/lock/queue_view.ts";
import { isSuperseded } from "../../lib/lock/queue_view.ts";
import { type QueuedLock, takeLock, type TakeOptions } from "../../lib/lock/take.ts";
import { orderAnnotations } from "../../lib/lock/tickets.ts";
import { FakeApi, FakeClock, status, unusedClient } from "../support/fake_api.ts";

const LOCK = lockName("app");
const D = 15;
const job = (n: number | string) => `https://gitlab.example/acme/app/-/jobs/${n}`;

function setup() {
  const clock = new FakeClock();
  const api = new FakeApi(clock);
  const warnings: string[] = [];
  const options = (name: string, extra: Partial<TakeOptions> = {}): TakeOptions => ({
    client: unusedClient,
    namespace: "prod",
    release: "app",
    identity: `runner-${name}`,
    annotations: { [Annotation.ciJobUrl]: job(name), [Annotation.command]: "helm upgrade app" },
    timeoutMs: 3_600_000,
    leaseDurationSeconds: D,
    api,
    timing: clock.timing,
    warn: (line) => warnings.push(line),
    ...extra,
  });
  /** Starts a job and records when (on the fake clock) it got the lock or failed. */
  const start = (name: string, extra: Partial<TakeOptions> = {}) => {
    const state: {
      lock?: QueuedLock;
      error?: unknown;
      at?: number;
      progress: WaitProgress[];
      queued?: true;
    } = { progress: [] };
    const onQueued = () => state.queued = true;
    takeLock(options(name, { onProgress: (p) => state.progress.push(p), onQueued, ...extra })).then(
      (lock) => Object.assign(state, { lock, at: clock.now() }),
      (error) => Object.assign(state, { error, at: clock.now() }),
    );
    return state;
  };
  const tickets = () => [...api.leases.keys()].filter((n) => n.startsWith(ticketPrefix("app")));
  return { clock, api, warnings, options, start, tickets };
}

/** A ticket whose job died right after writing it (never renewed, never takes the lock). */
function deadTicket(api: FakeApi, name: string): V1Lease {
  return api.put(`${ticketPrefix("app")}${name}`, {
    metadata: {
      labels: releaseLabels("app"),
      annotations: { [Annotation.ciJobUrl]: job(name), ...orderAnnotations({ mode: "fifo" }) },
    },
    spec: { holderIdentity: `runner-${name}`, leaseDurationSeconds: 60 },
  })!;
}

Deno.test("takeLock() creates the lock without a ticket when nobody holds or waits: 3 requests", async () => {
  const { clock, api, start, tickets } = setup();
  const a = start("a");
  await clock.flush();
  assert.ok(a.lock, String(a.error));
  assert.equal(a.queued, undefined, "took it without a ticket");
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, "runner-a");
  assert.deepEqual(api.leases.get(LOCK)?.metadata?.labels, releaseLabels("app"));
  assert.deepEqual(tickets(), []);
  assert.deepEqual({ ...api.calls }, { list: 1, create: 1, watch: 1 });
  await a.lock.release();
  assert.equal(api.leases.has(LOCK), false);
  assert.equal(api.calls.delete, 1);
});

Deno.test("takeLock() hands the lock on in arrival order, each at once on release", async () => {
  const { clock, start, tickets } = setup();
  const holder = start("h");
  await clock.flush();
  const jobs = ["1", "2", "3"].map((n) => start(n));
  await clock.advance(1_000);
  assert.equal(tickets().length, 3);
  assert.ok(jobs.every((j) => !j.lock && !j.error));
  let current = holder;
  for (const next of jobs) {
    await clock.advance(500);
    await current.lock!.release();
    await clock.flush();
    assert.ok(next.lock, `job ${jobs.indexOf(next) + 1}: ${next.error}`);
    assert.equal(next.at, clock.now(), "taken at once, not after a lease duration");
    assert.ok(jobs.slice(jobs.indexOf(next) + 1).every((j) => !j.lock));
    current = next;
  }
  assert.deepEqual(tickets(), []);
  await current.lock!.release();
});

Deno.test("takeLock() tells each waiter its place and who is right ahead of it", async () => {
  const { clock, start } = setup();
  const holder = start("h");
  await clock.flush();
  const second = start("1");
  await clock.flush();
  const third = start("2");
  await clock.flush();
  assert.equal(second.progress[0]?.queue?.place, 1);
  assert.equal(second.progress[0]?.holder?.ciJobUrl, job("h"));
  assert.equal(third.progress[0]?.queue?.place, 2);
  assert.equal(third.progress[0]?.queue?.ahead?.ciJobUrl, job("1"));
  await clock.advance(10_000);
  assert.equal(third.progress.length, 2, "about every 10 s");
  await holder.lock!.release();
});

Deno.test("takeLock() lets a waiter that died mid-queue delay the next once by one lease duration, later jobs not at all", async () => {
  const { clock, api, start, tickets } = setup();
  const holder = start("h");
  await clock.flush();
  const first = start("1");
  await clock.flush();
  deadTicket(api, "dead");
  const third = start("3");
  await clock.advance(1_000);
  await holder.lock!.release();
  await clock.flush();
  assert.ok(first.lock);
  await clock.advance(1_000);
  const released = clock.now();
  await first.lock.release();
  // The dead waiter is head now: the one behind it takes over after one lease duration.
  await clock.advance(D * 1000 - 1);
  assert.equal(Boolean(third.lock), false);
  await clock.advance(2);
  await clock.flush();
  assert.ok(third.lock, String(third.error));
  assert.ok(third.at! - released <= D * 1000 + 1);
  assert.deepEqual(tickets(), [], "the dead ticket was removed");
  await third.lock.release();
  // Later jobs pay nothing.
  for (const n of ["4", "5", "6"]) {
    const later = start(n);
    await clock.flush();
    assert.ok(later.lock, `${n}: ${later.error}`);
    await later.lock.release();
  }
});

Deno.test("takeLock() deletes at once a ticket the API server has not seen written for a minute", async () => {
  const { clock, api, start, tickets } = setup();
  deadTicket(api, "long-gone");
  await clock.advance(10 * 60_000);
  const a = start("a");
  await clock.flush();
  assert.ok(a.lock, String(a.error));
  assert.deepEqual(tickets(), []);
  assert.equal(a.queued, undefined, "the fast path, as if nobody waited");
  await a.lock.release();
});

Deno.test("takeLock() keeps a place through a pause shorter than the lease; after a longer one rejoins at the back", async () => {
  const { clock, api, start, tickets, warnings } = setup();
  const holder = start("h");
  await clock.flush();
  const paused = start("p");
  await clock.flush();
  const behind = start("b");
  await clock.flush();
  // The paused job's requests hang (SIGSTOP) when the lock frees.
  api.failing.set("create", "hang");
  await holder.lock!.release();
  await clock.advance(D * 1000 - 1_000);
  api.failing.delete("create");
  assert.equal(Boolean(behind.lock), false, "the head keeps its place for one lease duration");
  await clock.advance(2_000);
  assert.ok(behind.lock, `${behind.error}`);
  // The paused job comes back (its hung request times out): its ticket is gone, it rejoins at
  // the back.
  await clock.advance(10_000);
  assert.match(warnings.join("\n"), /place in the queue .* was removed.*rejoining at the back/);
  assert.equal(Boolean(paused.lock), false);
  assert.equal(tickets().length, 1);
  await behind.lock.release();
  await clock.flush();
  assert.ok(paused.lock, String(paused.error));
  await paused.lock.release();
});

Deno.test("takeLock() takes over an unrenewed lock one lease duration after it first saw it", async () => {
  const { clock, api, start } = setup();
  api.put(LOCK, {
    metadata: { labels: releaseLabels("app") },
    spec: { holderIdentity: "dead-holder", leaseDurationSeconds: D },
  });
  await clock.advance(3_600_000); // however old its renewTime: only what we observe counts
  const a = start("a");
  await clock.advance(D * 1000 - 1);
  assert.equal(Boolean(a.lock), false);
  await clock.advance(2);
  assert.ok(a.lock, String(a.error));
  await a.lock.release();
});

Deno.test("takeLock() never waits past an hour on a lease that asks for decades", async () => {
  const { clock, api, start } = setup();
  api.put(LOCK, {
    metadata: { labels: releaseLabels("app") },
    spec: { holderIdentity: "tampered", leaseDurationSeconds: 2 ** 31 - 1 },
  });
  const a = start("a", { timeoutMs: 7_200_000 });
  await clock.advance(3600_000 + 1);
  assert.ok(a.lock, String(a.error));
  await a.lock.release();
});

Deno.test("takeLock() newest: only the newest waiter runs; older ones are superseded naming it", async () => {
  const { clock, start } = setup();
  const holder = start("h");
  await clock.flush();
  const older = start("1", { order: { mode: "newest" } });
  await clock.flush();
  const newer = start("2", { order: { mode: "newest" } });
  await clock.flush();
  await holder.lock!.release();
  await clock.flush();
  assert.ok(newer.lock, String(newer.error));
  assert.ok(isSuperseded(older.error), String(older.error));
  assert.match((older.error as Error).message, /superseded.*CI job .*jobs\/2/);
  await newer.lock.release();
});

Deno.test("takeLock() orders waiters by pipeline number, whatever order they arrive in", async () => {
  const { clock, start } = setup();
  const holder = start("h");
  await clock.flush();
  const scope = "gitlab:7";
  const p12 = start("12", { order: { mode: "fifo", key: 12, scope } });
  await clock.flush();
  const p10 = start("10", { order: { mode: "fifo", key: 10, scope } });
  await clock.flush();
  const p11 = start("11", { order: { mode: "fifo", key: 11, scope } });
  await clock.flush();
  const order: string[] = [];
  let current = holder;
  for (let i = 0; i < 3; i++) {
    await current.lock!.release();
    await clock.flush();
    current = [p10, p11, p12].find((j) =>
      j.lock && !order.includes(j === p10 ? "10" : j === p11 ? "11" : "12")
    )!;
    order.push(current === p10 ? "10" : current === p11 ? "11" : "12");
  }
  assert.deepEqual(order, ["10", "11", "12"]);
  await current.lock!.release();
});

Deno.test("takeLock() refuses an order key lower than the last deploy's, writing nothing", async () => {
  const { clock, api, start, tickets } = setup();
  api.put(stateName("app"), {
    metadata: {
      labels: releaseLabels("app"),
      annotations: {
        [RecordAnnotation.deployedKey]: "20",
        [RecordAnnotation.deployedBy]: "CI job x",
      },
    },
    spec: {},
  });
  const before = api.requests;
  const a = start("a", {
    order: { mode: "fifo", key: 19, scope: "order-key" },
    refuseOutdated: true,
  });
  await clock.flush();
  assert.ok(a.error instanceof HelmLockError);
  assert.equal(a.error.code, ExitCode.Superseded);
  assert.match(a.error.message, /order key 19 is outdated: expected at least 20/);
  assert.equal(api.requests - before, 1, "only the list");
  assert.deepEqual(tickets(), []);
  assert.equal(api.leases.has(LOCK), false);
});

Deno.test("takeLock() records the deploy's order key and the uninstall takes the record along", async () => {
  const { clock, api, start } = setup();
  const a = start("a", {
    order: { mode: "fifo", key: 5, scope: "order-key" },
    refuseOutdated: true,
  });
  await clock.flush();
  await a.lock!.recordDeploy();
  assert.equal(
    api.leases.get(stateName("app"))?.metadata?.annotations?.[RecordAnnotation.deployedKey],
    "5",
  );
  await a.lock!.forgetRelease();
  assert.equal(api.leases.has(stateName("app")), false);
  await a.lock!.release();
});

Deno.test("takeLock() exits 6 when the API server cannot be reached at the first request", async () => {
  const { clock, api, start } = setup();
  api.down = true;
  const a = start("a");
  await clock.flush();
  assert.ok(a.error instanceof HelmLockError);
  assert.equal(a.error.code, ExitCode.Unreachable);
});

Deno.test("takeLock() retries timeouts and 5xx before it has queued, until --lock-timeout", async () => {
  const { clock, api, start } = setup();
  api.failing.set("list", status(503, "overloaded"));
  const a = start("a", { timeoutMs: 120_000 });
  await clock.advance(20_000);
  assert.equal(a.error, undefined);
  api.failing.set("list", "hang"); // no answer: timed out after 10 s each
  await clock.advance(20_000);
  assert.equal(a.error, undefined);
  api.failing.delete("list");
  await clock.advance(30_000);
  assert.ok(a.lock, String(a.error));
  await a.lock.release();

  api.failing.set("list", status(503));
  const b = start("b", { timeoutMs: 30_000 });
  await clock.advance(31_000);
  assert.ok(b.error instanceof HelmLockError);
  assert.equal(b.error.code, ExitCode.LockTimeout);
  assert.match(b.error.message, /API server kept failing/);
});

Deno.test("takeLock() times out naming the holder, its CI job, since when and --lock-timeout", async () => {
  const { clock, start, tickets } = setup();
  const holder = start("h");
  await clock.flush();
  const a = start("a", { timeoutMs: 30_000 });
  await clock.advance(30_001);
  assert.ok(a.error instanceof HelmLockError);
  assert.equal(a.error.code, ExitCode.LockTimeout);
  assert.match(
    a.error.message,
    /held by "runner-h" \(CI job .*jobs\/h.*since 20\d\d-.*raise --lock-timeout/,
  );
  await clock.flush();
  assert.deepEqual(tickets(), [], "its ticket is gone");
  await holder.lock!.release();
});

Deno.test("takeLock() leaves the queue when aborted, writing nothing more", async () => {
  const { clock, start, tickets } = setup();
  const holder = start("h");
  await clock.flush();
  const abort = new AbortController();
  const a = start("a", { signal: abort.signal });
  await clock.flush();
  assert.equal(tickets().length, 1);
  abort.abort(new Error("SIGTERM"));
  await clock.flush();
  assert.equal((a.error as Error).message, "SIGTERM");
  assert.deepEqual(tickets(), []);
  await holder.lock!.release();
});

Deno.test("takeLock() hands over through the fallback list when the watch is refused", async () => {
  const { clock, api, start } = setup();
  api.noWatch = true;
  const holder = start("h");
  await clock.flush();
  const a = start("a");
  await clock.flush();
  await holder.lock!.release();
  await clock.advance(16_000);
  assert.ok(a.lock, String(a.error));
  await a.lock.release();
});

Deno.test("takeLock() treats a lock deleted by hand as free at once", async () => {
  const { clock, api, start } = setup();
  const holder = start("h");
  await clock.flush();
  const a = start("a");
  await clock.flush();
  api.put(LOCK, undefined);
  await clock.flush();
  assert.ok(a.lock, String(a.error));
  assert.ok(holder.lock!.lost.aborted, "the holder saw it too");
  await a.lock.release();
  await holder.lock!.release();
});

Deno.test("takeLock() labels an older helm-lock's lock and takes it the moment that one deletes it", async () => {
  const { clock, api, start } = setup();
  api.put(LOCK, {
    metadata: { labels: { "app.kubernetes.io/managed-by": "helm-lock" } },
    spec: { holderIdentity: "old-build", leaseDurationSeconds: D },
  });
  const a = start("a");
  await clock.advance(1_500);
  assert.equal(Boolean(a.lock), false);
  assert.equal(api.leases.get(LOCK)?.metadata?.labels?.["helm-lock.dev/release"], "app");
  await clock.advance(500);
  api.put(LOCK, undefined); // the old holder's release
  await clock.flush();
  assert.ok(a.lock, String(a.error));
  await a.lock.release();
});

Deno.test("takeLock() keeps 20 jobs that start at once under 8 requests each", async () => {
  const { clock, api, start } = setup();
  const jobs = Array.from({ length: 20 }, (_, i) => start(String(i)));
  await clock.flush();
  let done = 0;
  while (done < jobs.length) {
    const holding = jobs.find((j) => j.lock && !(j as { done?: boolean }).done);
    assert.ok(holding, `${done} done: ${jobs.map((j) => String(j.error ?? "")).join(",")}`);
    await clock.advance(1_500); // helm runs
    await holding.lock!.release();
    (holding as { done?: boolean }).done = true;
    done++;
    await clock.flush();
  }
  const perJob = api.requests / jobs.length;
  assert.ok(perJob <= 8, `${perJob} requests per job: ${JSON.stringify(api.calls)}`);
});
