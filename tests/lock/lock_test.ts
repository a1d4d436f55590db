/**
 * Unit tests of the lock's timing logic on a fake clock and a fake API server: nothing
 * here waits for real time.
 */
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { Annotation } from "../../lib/lock/identity.ts";
import { acquireLock, type HeldLock, holderInfo, type LockOptions } from "../../lib/lock/lock.ts";
import { FakeClock, FakeLeaseServer, networkError, unusedClient } from "../support/fake_lease.ts";

const ME = "runner-1-42-aaaaaaaaaaaaaaaa";
const OTHER = "runner-2-77-bbbbbbbbbbbbbbbb";
const JOB = "https://gitlab.example/acme/app/-/jobs/77";

function setup(extra: Partial<LockOptions> = {}) {
  const clock = new FakeClock();
  const server = new FakeLeaseServer();
  const options: LockOptions = {
    client: unusedClient,
    namespace: "prod",
    release: "app",
    identity: ME,
    annotations: { [Annotation.command]: "upgrade app ./chart" },
    timeoutMs: 600_000,
    api: server,
    clock,
    sleep: clock.sleep,
    random: () => 0.5,
    user: "ci",
    server: "https://k8s.example:6443",
    ...extra,
  };
  return { clock, server, options };
}

/** A Lease held by OTHER, renewed at `renewTime` (by OTHER's clock). */
function othersLease(renewTime: Date, durationSeconds = 15): V1Lease {
  return {
    metadata: {
      name: "helm-lock-app",
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

/** Starts acquiring and records when (on the fake clock) it settled. */
/** What a holder's release does: clear the holder, then delete the Lease. */
function releaseAsHolder(server: FakeLeaseServer): void {
  const { holderIdentity: _holder, ...spec } = server.lease?.spec ?? {};
  const metadata = server.lease?.metadata ?? {};
  const annotations = { ...metadata.annotations, [Annotation.released]: "true" };
  server.put({ ...server.lease, metadata: { ...metadata, annotations }, spec });
  server.put(undefined);
}

function start(options: LockOptions, clock: FakeClock) {
  const state: { lock?: HeldLock; error?: unknown; at?: number } = {};
  const done = acquireLock(options).then(
    (lock) => Object.assign(state, { lock, at: clock.now() }),
    (error) => Object.assign(state, { error, at: clock.now() }),
  );
  return { state, done };
}

async function releaseHeld(state: { lock?: HeldLock }): Promise<void> {
  assert.ok(state.lock);
  await state.lock.release();
}

Deno.test("acquireLock() creates the Lease when there is none", async () => {
  const { clock, server, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  assert.ok(state.lock);
  const spec = server.lease?.spec;
  assert.equal(spec?.holderIdentity, ME);
  assert.equal(spec?.leaseDurationSeconds, 15);
  assert.equal(spec?.leaseTransitions, 0);
  assert.equal(server.lease?.metadata?.name, "helm-lock-app");
  assert.equal(server.lease?.metadata?.annotations?.[Annotation.command], "upgrade app ./chart");
  assert.equal(server.lease?.metadata?.labels?.["app.kubernetes.io/managed-by"], "helm-lock");
  // The watch is the holder's, on its own Lease.
  assert.deepEqual(server.calls, { get: 1, create: 1, replace: 0, delete: 0, watch: 1 });
  await releaseHeld(state);
});

Deno.test("acquireLock() takes over a released Lease at once, keeping foreign annotations", async () => {
  const { clock, server, options } = setup();
  server.put({ ...othersLease(clock.date()), spec: { leaseDurationSeconds: 15 } });
  const { state } = start(options, clock);
  await clock.flush();
  assert.ok(state.lock);
  assert.equal(server.lease?.spec?.holderIdentity, ME);
  const annotations = server.lease?.metadata?.annotations ?? {};
  assert.equal(annotations["example.com/keep"], "yes");
  assert.equal(annotations[Annotation.ciJobUrl], undefined, "the old holder's CI job is gone");
  await releaseHeld(state);
});

Deno.test("acquireLock() takes over an unrenewed Lease one lease duration after it first saw it", async () => {
  const { clock, server, options } = setup();
  // Its renewTime is a day old by our clock: irrelevant, only our observation counts.
  server.put(othersLease(new Date(clock.date().getTime() - 86_400_000)));
  const { state } = start(options, clock);
  const t0 = clock.now();
  await clock.advance(14_999);
  assert.equal(state.lock, undefined, "not before the lease duration");
  await clock.advance(1);
  assert.ok(state.lock, "right at the lease duration");
  assert.equal(state.at! - t0, 15_000);
  assert.equal(server.lease?.spec?.holderIdentity, ME);
  assert.equal(server.lease?.spec?.leaseTransitions, 4);
  await releaseHeld(state);
});

Deno.test("acquireLock() stamps started-at when it becomes the holder, not when it began waiting", async () => {
  const waitingSince = "2026-03-01T11:00:00.000Z";
  const { clock, server, options } = setup({
    annotations: { [Annotation.startedAt]: waitingSince, [Annotation.command]: "upgrade" },
  });
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(15_000);
  assert.ok(state.lock);
  const acquiredAt = clock.date().toISOString();
  assert.equal(server.lease?.metadata?.annotations?.[Annotation.startedAt], acquiredAt);
  assert.equal(holderInfo(server.lease!).since?.toISOString(), acquiredAt);
  await clock.advance(5_000); // A renewal keeps it.
  assert.ok(server.calls.replace >= 2);
  assert.equal(server.lease?.metadata?.annotations?.[Annotation.startedAt], acquiredAt);
  await releaseHeld(state);
});

Deno.test("acquireLock() uses the holder's own leaseDurationSeconds for its expiry", async () => {
  const { clock, server, options } = setup();
  server.put(othersLease(clock.date(), 40));
  const { state } = start(options, clock);
  await clock.advance(39_000);
  assert.equal(state.lock, undefined);
  await clock.advance(1_000);
  assert.ok(state.lock);
  await releaseHeld(state);
});

Deno.test("acquireLock() never takes over while the holder keeps renewing, whatever its clock says", async () => {
  const { clock, server, options } = setup();
  // The holder's clock runs an hour behind: its renewTime always looks expired to us.
  const skewed = () => new Date(clock.date().getTime() - 3_600_000);
  server.put(othersLease(skewed()));
  const { state } = start(options, clock);
  for (let i = 0; i < 24; i++) {
    await clock.advance(5_000);
    server.renew(skewed());
  }
  await clock.flush();
  assert.equal(state.lock, undefined, "two minutes of renewals: still theirs");
  const lastRenewal = clock.now();
  await clock.advance(14_000);
  assert.equal(state.lock, undefined);
  await clock.advance(1_000);
  assert.ok(state.lock);
  assert.equal(state.at! - lastRenewal, 15_000);
  await releaseHeld(state);
});

Deno.test("acquireLock() wakes at once when the holder releases, through the watch", async () => {
  const { clock, server, options } = setup();
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(3_000);
  assert.equal(server.calls.watch, 1);
  const releasedAt = clock.now();
  releaseAsHolder(server);
  await clock.flush();
  assert.ok(state.lock);
  assert.equal(state.at, releasedAt, "no time passed between release and acquire");
  await releaseHeld(state);
});

Deno.test("acquireLock() counts a Lease cleared by hand while held as held until it would have expired", async () => {
  const { clock, server, options } = setup();
  server.put(othersLease(clock.date()));
  const lastChange = clock.now();
  const { state } = start(options, clock);
  await clock.advance(1_000);
  const { holderIdentity: _holder, ...spec } = server.lease?.spec ?? {};
  server.put({ ...server.lease, spec }); // No release mark: its holder may still write.
  await clock.advance(13_999);
  assert.equal(state.lock, undefined);
  await clock.advance(1);
  assert.ok(state.lock);
  assert.equal(state.at! - lastChange, 15_000);
  assert.equal(server.lease?.metadata?.annotations?.[Annotation.released], undefined);
  await releaseHeld(state);
});

Deno.test("acquireLock() counts a Lease deleted while held as held until it would have expired", async () => {
  const { clock, server, options } = setup();
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(3_000);
  const lastChange = clock.now();
  server.renew(clock.date());
  await clock.advance(2_000);
  server.put(undefined); // kubectl delete lease: its holder may still write until its deadline.
  await clock.advance(12_999);
  assert.equal(state.lock, undefined, "the holder's renew deadline may not have passed");
  await clock.advance(1);
  assert.ok(state.lock);
  assert.equal(state.at! - lastChange, 15_000);
  assert.equal(server.lease?.spec?.holderIdentity, ME);
  await releaseHeld(state);
});

Deno.test("acquireLock() re-opens at once a watch that served events, and still wakes on release", async () => {
  const { clock, server, options } = setup();
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(5_000);
  server.renew(clock.date());
  await clock.flush();
  server.breakWatches();
  await clock.flush();
  assert.equal(server.calls.watch, 2, "re-opened without a backoff");
  const releasedAt = clock.now();
  releaseAsHolder(server);
  await clock.flush();
  assert.equal(state.at, releasedAt);
  await releaseHeld(state);
});

Deno.test("acquireLock() falls back to a jittered poll when the watch is down", async () => {
  const { clock, server, options } = setup();
  server.watchDown = true;
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(5_000);
  // Released behind the waiter's back: no watch event reaches it.
  server.watchDown = false;
  server.failures.watch = Array.from({ length: 50 }, networkError);
  server.put({ ...server.lease, spec: { ...server.lease?.spec, holderIdentity: "" } });
  await clock.advance(9_000);
  assert.equal(state.lock, undefined, "no wake-up without the watch");
  await clock.advance(2_000);
  assert.ok(state.lock, "the poll found it free within the fallback interval");
  await releaseHeld(state);
});

Deno.test("acquireLock() sends at most 6 requests a minute while waiting, with or without the watch", async () => {
  for (const watchDown of [false, true]) {
    const { clock, server, options } = setup();
    server.watchDown = watchDown;
    server.put(othersLease(clock.date()));
    const { state } = start(options, clock);
    for (let i = 0; i < 60; i++) {
      await clock.advance(5_000);
      server.renew(clock.date());
    }
    assert.equal(state.lock, undefined);
    const total = Object.values(server.calls).reduce((a, b) => a + b, 0) - server.calls.replace;
    assert.ok(total <= 5 * 6, `${total} requests in 5 minutes (watch down: ${watchDown})`);
    server.put(undefined);
    await clock.advance(20_000);
    assert.ok(state.lock);
    await releaseHeld(state);
  }
});

Deno.test("acquireLock() times out naming the holder, its CI job, since when and --lock-timeout", async () => {
  const { clock, server, options } = setup({ timeoutMs: 30_000 });
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  for (let i = 0; i < 6; i++) {
    await clock.advance(5_000);
    server.renew(clock.date());
  }
  await clock.flush();
  assert.ok(state.error instanceof HelmLockError);
  assert.equal(state.error.code, ExitCode.LockTimeout);
  assert.equal(
    state.error.message,
    `Cannot acquire the lock on release "app" in namespace "prod" (Lease "helm-lock-app") within 30s: it is held by "${OTHER}" (CI job ${JOB}, user bob) since 2026-03-01T11:55:00.000Z; raise --lock-timeout to wait longer`,
  );
  assert.equal(server.lease?.spec?.holderIdentity, OTHER);
});

Deno.test("acquireLock() reports progress at once, then about every 10 s while waiting", async () => {
  const progress: { waitedMs: number; heldForMs?: number; identity: string }[] = [];
  const { clock, server, options } = setup({
    timeoutMs: 35_000,
    onProgress: (p) => progress.push({ ...p, identity: p.holder.identity }),
  });
  server.put(othersLease(clock.date()));
  const { done } = start(options, clock);
  for (let i = 0; i < 8; i++) {
    await clock.advance(5_000);
    server.renew(clock.date());
  }
  await done;
  assert.deepEqual(progress.map((p) => p.waitedMs), [0, 10_000, 20_000, 30_000]);
  assert.ok(progress.every((p) => p.identity === OTHER));
  // Held since 11:55 by its annotation; the fake clock starts at 12:00.
  assert.equal(progress[1]?.heldForMs, 5 * 60_000 + 10_000);
});

Deno.test("acquireLock() rejects with the signal's reason when aborted, writing nothing", async () => {
  const controller = new AbortController();
  const { clock, server, options } = setup({ signal: controller.signal });
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(3_000);
  controller.abort(new Error("SIGINT"));
  await clock.flush();
  assert.equal((state.error as Error).message, "SIGINT");
  assert.equal(server.calls.create + server.calls.replace + server.calls.delete, 0);
});

Deno.test("acquireLock() keeps waiting through a transient API error", async () => {
  const { clock, server, options } = setup();
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.advance(1_000);
  server.failures.replace = [networkError()];
  releaseAsHolder(server);
  server.put({ ...othersLease(clock.date()), spec: {} }); // Free: try, fail, retry.
  await clock.advance(5_000);
  assert.ok(state.lock);
  await releaseHeld(state);
});

/** Reads and writes sent in each of `minutes` fake minutes. */
async function requestsPerMinute(server: FakeLeaseServer, clock: FakeClock, minutes: number) {
  const sent = () => server.calls.get + server.calls.create + server.calls.replace;
  const counts: number[] = [];
  for (let i = 0; i < minutes; i++) {
    const before = sent();
    await clock.advance(60_000);
    counts.push(sent() - before);
  }
  return counts;
}

Deno.test("acquireLock() backs off while writes to an expired Lease keep failing", async () => {
  const { ApiException } = await import("@kubernetes/client-node");
  const { clock, server, options } = setup({ random: () => 0 }); // The shortest jitter.
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.flush();
  const unavailable = () => new ApiException(503, "Unavailable", "{}", {});
  server.failures.replace = Array.from({ length: 1_000 }, unavailable);
  const counts = await requestsPerMinute(server, clock, 5);
  assert.ok(counts[0]! <= 10, `${counts[0]} requests in the first minute`);
  for (const n of counts.slice(1)) assert.ok(n <= 6, `${counts.join(", ")} requests a minute`);
  assert.equal(state.lock, undefined);
  server.failures.replace = [];
  await clock.advance(15_000);
  assert.ok(state.lock, "acquired within the longest backoff once writes work");
  await releaseHeld(state);
});

Deno.test("acquireLock() backs off while the API server is unreachable and the watch is down", async () => {
  const { clock, server, options } = setup({ random: () => 0 });
  server.watchDown = true;
  server.put(othersLease(clock.date()));
  const { state } = start(options, clock);
  await clock.flush();
  server.failures.get = Array.from({ length: 1_000 }, networkError);
  const counts = await requestsPerMinute(server, clock, 5);
  assert.ok(counts[0]! <= 10, `${counts[0]} requests in the first minute`);
  for (const n of counts.slice(1)) assert.ok(n <= 6, `${counts.join(", ")} requests a minute`);
  assert.equal(server.calls.replace + server.calls.create, 0, "never written without a read");
  assert.ok(server.calls.watch <= 10, `${server.calls.watch} watch attempts`);
  server.failures.get = [];
  await clock.advance(30_000);
  assert.ok(state.lock, "acquired once the server answers");
  await releaseHeld(state);
});

Deno.test("acquireLock() names the server when it cannot be reached", async () => {
  const { clock, server, options } = setup();
  server.down = true;
  const { state } = start(options, clock);
  await clock.flush();
  assert.ok(state.error instanceof HelmLockError);
  assert.equal(state.error.code, ExitCode.Unreachable);
  assert.equal(
    state.error.message,
    "Cannot reach the Kubernetes API server https://k8s.example:6443: connect ECONNREFUSED",
  );
});

Deno.test("acquireLock() says when the namespace does not exist, hinting --create-namespace only if asked", async () => {
  const { ApiException } = await import("@kubernetes/client-node");
  for (const hint of [true, false]) {
    const { clock, server, options } = setup({ createNamespaceHint: hint });
    server.failures.create = [new ApiException(404, "NotFound", "{}", {})];
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

Deno.test("HeldLock renews every retry period, 2 s of a 15 s lease", async () => {
  const { clock, server, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  const renewTimes: string[] = [];
  await clock.advance(1_999);
  assert.equal(server.calls.replace, 0);
  await clock.advance(1);
  renewTimes.push(String(server.lease?.spec?.renewTime));
  for (let i = 0; i < 5; i++) {
    await clock.advance(2_000);
    renewTimes.push(String(server.lease?.spec?.renewTime));
  }
  assert.equal(server.calls.replace, 6);
  assert.equal(new Set(renewTimes).size, 6);
  assert.equal(state.lock?.lost.aborted, false);
  await state.lock?.release();
});

Deno.test("HeldLock.lost fires when renewals fail for two thirds of the lease duration, not before", async () => {
  const { clock, server, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  server.down = true;
  await clock.advance(9_999);
  assert.equal(state.lock?.lost.aborted, false);
  await clock.advance(1);
  assert.equal(state.lock?.lost.aborted, true);
  const reason = state.lock?.lost.reason;
  assert.ok(reason instanceof HelmLockError);
  assert.equal(reason.code, ExitCode.LockLost);
  assert.equal(
    reason.message,
    'Lost the lock on release "app" in namespace "prod" (Lease "helm-lock-app"): no renewal succeeded for 10s: ' +
      "renewals starved (a loaded machine or API server); " +
      "a longer --lock-lease-duration (now 15s) tolerates longer stalls",
  );
  server.down = false;
  const meta = server.lease?.metadata;
  await state.lock?.release();
  // Nobody took it over meanwhile: still ours by the record, so it is released on the way out
  // (its holder cleared, which moves its resourceVersion on, then deleted).
  assert.deepEqual(server.deletes.map((d) => d.uid), [meta?.uid]);
  assert.equal(server.lease, undefined);
});

Deno.test("HeldLock never loses a lock it renews, even when every other renewal fails", async () => {
  const { clock, server, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  for (let i = 0; i < 20; i++) {
    if (i % 2 === 0) server.failures.replace = [networkError()];
    await clock.advance(5_000);
  }
  assert.equal(state.lock?.lost.aborted, false);
  assert.equal(server.lease?.spec?.holderIdentity, ME);
  await state.lock?.release();
});

Deno.test("HeldLock.lost fires at the renew deadline when a renewal gets no answer", async () => {
  const { clock, server, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  server.hang.add("replace");
  await clock.advance(9_999);
  assert.equal(state.lock?.lost.aborted, false);
  await clock.advance(1);
  assert.equal(state.lock?.lost.aborted, true);
  server.hang.clear();
  await state.lock?.release();
});

Deno.test("acquireLock() gives up on an API server that never answers", async () => {
  const { clock, server, options } = setup();
  server.hang.add("get");
  const { state } = start(options, clock);
  await clock.advance(9_999);
  assert.equal(state.error, undefined);
  await clock.advance(1);
  const error: unknown = state.error;
  assert.ok(error instanceof HelmLockError);
  assert.equal(error.code, ExitCode.Unreachable);
  assert.equal(
    error.message,
    "Cannot reach the Kubernetes API server https://k8s.example:6443: no answer within 10 s",
  );
});

Deno.test("HeldLock.lost fires when another holder took the Lease", async () => {
  const { clock, server, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  server.put(othersLease(clock.date()));
  await clock.advance(5_000);
  const reason = state.lock?.lost.reason;
  assert.ok(reason instanceof HelmLockError);
  assert.match(reason.message, new RegExp(`it is now held by "${OTHER}" \\(CI job ${JOB}\\)$`));
  await state.lock?.release();
  assert.equal(server.lease?.spec?.holderIdentity, OTHER, "theirs stays");
  assert.equal(server.calls.delete, 0);
});

Deno.test("HeldLock.release() clears the holder, then deletes guarded by uid and the latest resourceVersion", async () => {
  const { clock, server, options } = setup({ leaseDurationSeconds: 3 });
  const { state } = start(options, clock);
  await clock.advance(2_500); // One renewal moved the resourceVersion.
  const meta = server.lease?.metadata;
  const renewals = server.calls.replace;
  const events: string[] = [];
  await server.watch(
    "",
    (e) => events.push(`${e.type}:${e.object.spec?.holderIdentity ?? ""}`),
    new AbortController().signal,
  );
  await state.lock?.release();
  await state.lock?.release();
  assert.deepEqual(events, ["MODIFIED:", "DELETED:"]);
  assert.equal(server.calls.replace, renewals + 1, "the release's clear");
  assert.deepEqual(server.deletes, [{
    uid: meta?.uid,
    resourceVersion: String(Number(meta?.resourceVersion) + 1),
  }]);
  assert.equal(server.lease, undefined);
});

Deno.test("HeldLock.release() does not wait for a renewal in flight", async () => {
  const { clock, server, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  server.hang.add("replace");
  await clock.advance(5_000); // The renewal is sent and never answered.
  assert.equal(server.calls.replace, 1);
  server.hang.delete("replace"); // Only that one request stalls.
  let released = false;
  state.lock?.release().then(() => released = true);
  await clock.flush();
  assert.equal(released, true, "released with no time passing");
  assert.equal(server.lease, undefined);
  assert.equal(state.lock?.lost.aborted, false);
});

Deno.test("HeldLock.release() clears the holder when delete preconditions are refused", async () => {
  const { clock, server, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  const { ApiException } = await import("@kubernetes/client-node");
  server.failures.delete = [new ApiException(422, "Unprocessable", "{}", {})];
  await state.lock?.release();
  assert.ok(server.lease);
  assert.equal(server.lease.spec?.holderIdentity, undefined);
});

Deno.test("HeldLock.validUntil() is the last renewal's send time plus the renew deadline, -Infinity once released", async () => {
  const { clock, server, options } = setup();
  const { state } = start(options, clock);
  await clock.flush();
  const acquiredAt = clock.now();
  assert.equal(state.lock?.validUntil(), acquiredAt + 10_000);
  await clock.advance(2_000); // The first renewal, sent at 2 s (the retry period).
  assert.equal(state.lock?.validUntil(), acquiredAt + 12_000);
  server.down = true;
  await clock.advance(2_000); // A failed renewal does not extend it.
  assert.equal(state.lock?.validUntil(), acquiredAt + 12_000);
  server.down = false;
  await state.lock?.release();
  assert.equal(state.lock?.validUntil(), -Infinity);
});
