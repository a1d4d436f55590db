/**
 * Unit tests of taking the lock from another holder (lib/lock/take.ts) on a fake clock and a
 * fake API server: expiry by observation, never by clocks; wake-ups through the watch and the
 * fallback list; request rates; timeouts and errors. Nothing here waits for real time.
 */
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { Annotation } from "../../lib/lock/identity.ts";
import { holderInfo } from "../../lib/lock/lease.ts";
import { lockName, RELEASE_LABEL, releaseLabels } from "../../lib/lock/names.ts";
import type { WaitProgress } from "../../lib/lock/queue_view.ts";
import { type QueuedLock, takeLock, type TakeOptions } from "../../lib/lock/take.ts";
import { FakeApi, FakeClock, networkError, status, unusedClient } from "../support/fake_api.ts";

const ME = "runner-1-42-aaaaaaaaaaaaaaaa";
const OTHER = "runner-2-77-bbbbbbbbbbbbbbbb";
const JOB = "https://gitlab.example/acme/app/-/jobs/77";
const LOCK = lockName("app");

function setup(extra: Partial<TakeOptions> = {}) {
  const clock = new FakeClock();
  const api = new FakeApi(clock);
  const options: TakeOptions = {
    client: unusedClient,
    namespace: "prod",
    release: "app",
    identity: ME,
    annotations: { [Annotation.command]: "upgrade app ./chart" },
    timeoutMs: 600_000,
    api,
    timing: clock.timing,
    ...extra,
  };
  return { clock, api, options };
}

/** A lock held by OTHER, renewed at `renewTime` (by OTHER's clock). */
function othersLease(renewTime: Date, durationSeconds = 15): V1Lease {
  return {
    metadata: {
      labels: releaseLabels("app"),
      annotations: {
        [Annotation.ciJobUrl]: JOB,
        [Annotation.user]: "bob",
        [Annotation.startedAt]: "2026-03-01T11:55:00.000Z",
        "example.com/keep": "yes",
      },
    },
    spec: {
      holderIdentity: OTHER,
      leaseDurationSeconds: durationSeconds,
      acquireTime: renewTime as never,
      renewTime: renewTime as never,
      leaseTransitions: 3,
    },
  };
}

/** OTHER renews its lock (a new resourceVersion), with `renewTime` by its own clock. */
function renew(api: FakeApi, renewTime: Date): void {
  const lease = api.leases.get(LOCK)!;
  api.put(LOCK, { ...lease, spec: { ...lease.spec, renewTime: renewTime as never } });
}

/** Starts taking the lock and records when (on the fake clock) it settled, and if it queued. */
function start(options: TakeOptions, clock: FakeClock) {
  const state: { lock?: QueuedLock; error?: unknown; at?: number; queued?: true } = {};
  const done = takeLock({ ...options, onQueued: () => state.queued = true }).then(
    (lock) => Object.assign(state, { lock, at: clock.now() }),
    (error) => Object.assign(state, { error, at: clock.now() }),
  );
  return { state, done };
}

async function releaseHeld(state: { lock?: QueuedLock }): Promise<void> {
  assert.ok(state.lock, "holds the lock");
  await state.lock.release();
}

Deno.test("takeLock() creates the Lease when there is none, labelled and annotated", async () => {
  const { clock, api, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  assert.ok(state.lock, String(state.error));
  const lease = api.leases.get(LOCK);
  assert.equal(lease?.spec?.holderIdentity, ME);
  assert.equal(lease?.spec?.leaseDurationSeconds, 15);
  assert.equal(lease?.spec?.leaseTransitions, 0);
  assert.equal(lease?.metadata?.annotations?.[Annotation.command], "upgrade app ./chart");
  assert.equal(lease?.metadata?.labels?.["app.kubernetes.io/managed-by"], "helm-lock");
  assert.equal(lease?.metadata?.labels?.[RELEASE_LABEL], "app");
  assert.deepEqual({ ...api.calls }, { list: 1, create: 1, watch: 1 });
  await releaseHeld(state);
});

Deno.test("takeLock() takes over a released Lease at once, keeping foreign annotations", async () => {
  const { clock, api, options } = setup();
  api.put(LOCK, { ...othersLease(clock.date()), spec: { leaseDurationSeconds: 15 } });
  const { state } = start(options, clock);
  await clock.flush();
  assert.ok(state.lock, String(state.error));
  assert.equal(state.queued, undefined, "took it without a ticket");
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, ME);
  const annotations = api.leases.get(LOCK)?.metadata?.annotations ?? {};
  assert.equal(annotations["example.com/keep"], "yes");
  assert.equal(annotations[Annotation.ciJobUrl], undefined, "the old holder's CI job is gone");
  await releaseHeld(state);
});

Deno.test("takeLock() takes over an unrenewed Lease one lease duration after it first saw it", async () => {
  const { clock, api, options } = setup();
  // Its renewTime is a day old by our clock: irrelevant, only our observation counts.
  api.put(LOCK, othersLease(new Date(clock.date().getTime() - 86_400_000)));
  const t0 = clock.now();
  const { state } = start(options, clock);
  await clock.advance(14_999);
  assert.equal(Boolean(state.lock), false, "not before the lease duration");
  await clock.advance(1);
  assert.ok(state.lock, "right at the lease duration");
  assert.equal(state.at! - t0, 15_000);
  assert.equal(state.queued, true);
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, ME);
  assert.equal(api.leases.get(LOCK)?.spec?.leaseTransitions, 4);
  await releaseHeld(state);
});

Deno.test("takeLock() stamps started-at when it becomes the holder, not when it began waiting", async () => {
  const waitingSince = "2026-03-01T11:00:00.000Z";
  const { clock, api, options } = setup({
    annotations: { [Annotation.startedAt]: waitingSince, [Annotation.command]: "upgrade" },
  });
  api.put(LOCK, othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(15_000);
  assert.ok(state.lock, String(state.error));
  const acquiredAt = clock.date().toISOString();
  assert.equal(api.leases.get(LOCK)?.metadata?.annotations?.[Annotation.startedAt], acquiredAt);
  assert.equal(holderInfo(api.leases.get(LOCK)!).since?.toISOString(), acquiredAt);
  const writes = api.calls.replace!;
  await clock.advance(5_000); // Renewals keep it.
  assert.ok(api.calls.replace! >= writes + 2);
  assert.equal(api.leases.get(LOCK)?.metadata?.annotations?.[Annotation.startedAt], acquiredAt);
  await releaseHeld(state);
});

Deno.test("takeLock() uses the holder's own leaseDurationSeconds for its expiry", async () => {
  const { clock, api, options } = setup();
  api.put(LOCK, othersLease(clock.date(), 40));
  const { state } = start(options, clock);
  await clock.advance(39_000);
  assert.equal(Boolean(state.lock), false);
  await clock.advance(1_000);
  assert.ok(state.lock, String(state.error));
  await releaseHeld(state);
});

Deno.test("takeLock() never takes over while the holder keeps renewing, whatever its clock says", async () => {
  const { clock, api, options } = setup();
  // The holder's clock runs an hour behind: its renewTime always looks expired to us.
  const skewed = () => new Date(clock.date().getTime() - 3_600_000);
  api.put(LOCK, othersLease(skewed()));
  const { state } = start(options, clock);
  for (let i = 0; i < 24; i++) {
    await clock.advance(5_000);
    renew(api, skewed());
  }
  await clock.flush();
  assert.equal(Boolean(state.lock), false, "two minutes of renewals: still theirs");
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, OTHER);
  const lastRenewal = clock.now();
  await clock.advance(14_000);
  assert.equal(Boolean(state.lock), false);
  await clock.advance(1_000);
  assert.ok(state.lock, String(state.error));
  assert.equal(state.at! - lastRenewal, 15_000);
  await releaseHeld(state);
});

Deno.test("takeLock() wakes at once when the holder releases, through the watch", async () => {
  for (const how of ["delete", "clear"] as const) {
    const { clock, api, options } = setup();
    api.put(LOCK, othersLease(clock.date()));
    const { state } = start(options, clock);
    await clock.advance(3_000);
    assert.equal(api.calls.watch, 1);
    const releasedAt = clock.now();
    if (how === "delete") api.put(LOCK, undefined);
    else {
      const lease = api.leases.get(LOCK)!;
      const { holderIdentity: _h, ...spec } = lease.spec ?? {};
      api.put(LOCK, { ...lease, spec });
    }
    await clock.flush();
    assert.ok(state.lock, `${how}: ${state.error}`);
    assert.equal(state.at, releasedAt, `${how}: no time passed between release and take`);
    await releaseHeld(state);
  }
});

Deno.test("takeLock() re-opens at once a watch that served events, and still wakes on release", async () => {
  const { clock, api, options } = setup();
  api.put(LOCK, othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(5_000);
  renew(api, clock.date());
  await clock.flush();
  api.breakWatches();
  await clock.flush();
  assert.equal(api.calls.watch, 2, "re-opened without a backoff");
  const releasedAt = clock.now();
  api.put(LOCK, undefined);
  await clock.flush();
  assert.equal(state.at, releasedAt);
  await releaseHeld(state);
});

Deno.test("takeLock() falls back to a list within 15 s when the watch is refused", async () => {
  const { clock, api, options } = setup();
  api.noWatch = true;
  api.put(LOCK, othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(5_000);
  renew(api, clock.date());
  await clock.advance(1_000);
  // Released behind the waiter's back: no watch event reaches it.
  api.put(LOCK, undefined);
  const releasedAt = clock.now();
  await clock.flush();
  assert.equal(Boolean(state.lock), false, "no wake-up without the watch");
  await clock.advance(15_000);
  assert.ok(state.lock, "the fallback list found it free");
  assert.ok(state.at! - releasedAt <= 15_000, `${state.at! - releasedAt} ms`);
  await releaseHeld(state);
});

Deno.test("takeLock() sends at most 6 requests a minute while waiting (12 without the watch), and never takes a renewed lock", async () => {
  for (const noWatch of [false, true]) {
    const { clock, api, options } = setup();
    api.noWatch = noWatch;
    api.put(LOCK, othersLease(clock.date()));
    const { state } = start(options, clock);
    await clock.advance(1_000);
    const before = api.requests;
    for (let i = 0; i < 60; i++) {
      await clock.advance(5_000);
      renew(api, clock.date());
    }
    assert.equal(Boolean(state.lock), false, `watch refused: ${noWatch}`);
    assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, OTHER);
    const perMinute = (api.requests - before) / 5;
    // Without a watch: a list about every 15 s, a watch attempt after each, the ticket every
    // 20 s (the goal of 6 holds with the watch only).
    const most = noWatch ? 12 : 6;
    const calls = JSON.stringify(api.calls);
    assert.ok(perMinute <= most, `${perMinute} requests a minute (no watch: ${noWatch}) ${calls}`);
    assert.ok(perMinute >= 3, `${perMinute} requests a minute: is the ticket renewed at all?`);
    api.put(LOCK, undefined);
    await clock.advance(20_000);
    assert.ok(state.lock, String(state.error));
    await releaseHeld(state);
  }
});

Deno.test("takeLock() times out naming the holder, its CI job, since when and --lock-timeout", async () => {
  const { clock, api, options } = setup({ timeoutMs: 30_000 });
  api.put(LOCK, othersLease(clock.date()));
  const { state } = start(options, clock);
  for (let i = 0; i < 6; i++) {
    await clock.advance(5_000);
    renew(api, clock.date());
  }
  await clock.flush();
  assert.ok(state.error instanceof HelmLockError, String(state.error));
  assert.equal(state.error.code, ExitCode.LockTimeout);
  assert.equal(
    state.error.message,
    `Cannot acquire the lock on release "app" in namespace "prod" (Lease "helm-lock-app") within 30s: it is held by "${OTHER}" (CI job ${JOB}, user bob) since 2026-03-01T11:55:00.000Z; raise --lock-timeout to wait longer`,
  );
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, OTHER);
  assert.deepEqual([...api.leases.keys()], [LOCK], "its ticket is gone");
});

Deno.test("takeLock() reports progress at once, then about every 10 s while waiting", async () => {
  const progress: WaitProgress[] = [];
  const { clock, api, options } = setup({
    timeoutMs: 35_000,
    onProgress: (p) => progress.push(p),
  });
  api.put(LOCK, othersLease(clock.date()));
  const { done } = start(options, clock);
  for (let i = 0; i < 8; i++) {
    await clock.advance(5_000);
    renew(api, clock.date());
  }
  await done;
  assert.deepEqual(progress.map((p) => p.waitedMs), [0, 10_000, 20_000, 30_000]);
  assert.ok(progress.every((p) => p.holder?.identity === OTHER));
  assert.ok(progress.every((p) => p.queue?.place === 1));
  // Held since 11:55 by its annotation; the fake clock starts at 12:00.
  assert.equal(progress[1]?.heldForMs, 5 * 60_000 + 10_000);
});

Deno.test("takeLock() rejects with the signal's reason when aborted, leaving nothing behind", async () => {
  const controller = new AbortController();
  const { clock, api, options } = setup({ signal: controller.signal });
  api.put(LOCK, othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(3_000);
  assert.equal(api.leases.size, 2, "the lock and our ticket");
  controller.abort(new Error("SIGINT"));
  await clock.flush();
  assert.equal((state.error as Error).message, "SIGINT");
  assert.deepEqual([...api.leases.keys()], [LOCK]);
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, OTHER);
});

Deno.test("takeLock() keeps waiting through a failed takeover and takes the lock on a retry", async () => {
  const { clock, api, options } = setup();
  api.put(LOCK, othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(1_000);
  api.failures.replace = [networkError()];
  const lease = api.leases.get(LOCK)!;
  const { holderIdentity: _h, ...spec } = lease.spec ?? {};
  api.put(LOCK, { ...lease, spec }); // Free: try, fail, retry.
  await clock.flush();
  assert.equal(Boolean(state.lock), false, "the first try failed");
  await clock.advance(5_000);
  assert.ok(state.lock, String(state.error));
  assert.ok(api.calls.replace! >= 2);
  await releaseHeld(state);
});

Deno.test("takeLock() backs off while writes to a free lock keep failing", async () => {
  const { clock, api, options } = setup();
  api.put(LOCK, othersLease(clock.date()));
  // The shortest jitter.
  const { state } = start({ ...options, timing: { ...clock.timing, random: () => 0 } }, clock);
  await clock.advance(1_000);
  api.failing.set("replace", status(503, "Unavailable"));
  const lease = api.leases.get(LOCK)!;
  const { holderIdentity: _h, ...spec } = lease.spec ?? {};
  api.put(LOCK, { ...lease, spec });
  const counts: number[] = [];
  for (let i = 0; i < 5; i++) {
    const before = api.calls.replace ?? 0;
    await clock.advance(60_000);
    counts.push((api.calls.replace ?? 0) - before);
  }
  assert.ok(counts[0]! <= 10, `${counts[0]} writes in the first minute`);
  for (const n of counts.slice(1)) assert.ok(n <= 6, `${counts.join(", ")} writes a minute`);
  assert.equal(Boolean(state.lock), false);
  api.failing.delete("replace");
  await clock.advance(15_000);
  assert.ok(state.lock, "taken within the longest backoff once writes work");
  await releaseHeld(state);
});

Deno.test("takeLock() names the server when it cannot be reached", async () => {
  const { clock, api, options } = setup();
  api.down = true;
  const { state } = start(options, clock);
  await clock.flush();
  assert.ok(state.error instanceof HelmLockError);
  assert.equal(state.error.code, ExitCode.Unreachable);
  assert.equal(
    state.error.message,
    "Cannot reach the Kubernetes API server https://k8s.example:6443: connect ECONNREFUSED 127.0.0.1:6443",
  );
});

Deno.test("takeLock() exits 7 naming verb and user when the first list is forbidden", async () => {
  const { clock, api, options } = setup();
  api.failing.set(
    "list",
    status(403, 'leases.coordination.k8s.io is forbidden: User "ci-bot" cannot list resource'),
  );
  const { state } = start(options, clock);
  await clock.flush();
  assert.ok(state.error instanceof HelmLockError);
  assert.equal(state.error.code, ExitCode.Forbidden);
  assert.equal(
    state.error.message,
    'Cannot list leases in namespace "prod" as user "ci-bot": forbidden',
  );
  assert.equal(api.requests, 1, "nothing written");
});

Deno.test("takeLock() says when the namespace does not exist, hinting --create-namespace only if asked", async () => {
  for (const hint of [true, false]) {
    const { clock, api, options } = setup({ createNamespaceHint: hint });
    api.failures.create = [status(404, "NotFound")];
    const { state } = start(options, clock);
    await clock.flush();
    assert.ok(state.error instanceof HelmLockError);
    assert.equal(state.error.code, ExitCode.Internal);
    assert.equal(
      state.error.message,
      'Cannot lock release "app" as namespace "prod" does not exist' +
        (hint ? "; pass --create-namespace to create it" : ""),
    );
  }
});

Deno.test("takeLock() gives up after 10 s on an API server that never answers, and retries until --lock-timeout", async () => {
  const { clock, api, options } = setup({ timeoutMs: 30_000 });
  api.failing.set("list", "hang");
  const { state } = start(options, clock);
  await clock.advance(29_999);
  assert.equal(state.error, undefined, "a timed-out list is asked again");
  assert.ok(api.calls.list! >= 2);
  await clock.advance(15_000);
  const error: unknown = state.error;
  assert.ok(error instanceof HelmLockError, String(error));
  assert.equal(error.code, ExitCode.LockTimeout);
  assert.match(error.message, /the API server kept failing \(last: .*no answer within 10 s\)/);
});
