/**
 * Unit tests of the holder's fault handling (lib/lock/hold.ts, through takeLock()) on a fake
 * clock and a fake API server: stalls, late answers, a deleted or taken-over Lease, refusals
 * and release.
 */
import assert from "node:assert/strict";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { holdTimings, isTransient } from "../../lib/lock/lease.ts";
import { lockName, releaseLabels } from "../../lib/lock/names.ts";
import { type QueuedLock, takeLock, type TakeOptions } from "../../lib/lock/take.ts";
import { FakeApi, FakeClock, networkError, status, unusedClient } from "../support/fake_api.ts";

const ME = "runner-1-42-aaaaaaaaaaaaaaaa";
const OTHER = "runner-2-77-bbbbbbbbbbbbbbbb";
const LOCK = lockName("app");

function options(clock: FakeClock, api: FakeApi, warnings: string[]): TakeOptions {
  return {
    client: unusedClient,
    namespace: "prod",
    release: "app",
    identity: ME,
    annotations: {},
    timeoutMs: 600_000,
    api,
    timing: clock.timing,
    warn: (line) => warnings.push(line),
  };
}

/** A lock taken on an empty fake server (the fast path: no waiting). */
async function holding(extra: Partial<TakeOptions> = {}) {
  const clock = new FakeClock();
  const api = new FakeApi(clock);
  const warnings: string[] = [];
  const lock: QueuedLock = await takeLock({ ...options(clock, api, warnings), ...extra });
  await clock.flush();
  return { clock, api, lock, warnings };
}

function forbidden(verb: string) {
  return status(
    403,
    `leases.coordination.k8s.io "helm-lock-app" is forbidden: User "ci-bot" cannot ${verb} resource "leases"`,
  );
}

Deno.test("isTransient() retries timeouts, network errors, 429 and 5xx; only other answers are refusals", () => {
  assert.equal(isTransient(new DOMException("no answer within 10 s", "TimeoutError")), true);
  assert.equal(isTransient(new TypeError("fetch failed")), true);
  assert.equal(isTransient(networkError()), true);
  assert.equal(isTransient(status(503)), true);
  assert.equal(isTransient(status(429)), true);
  assert.equal(isTransient(forbidden("update")), false);
  assert.equal(isTransient(status(422)), false);
  assert.equal(isTransient(status(409)), false);
  assert.equal(isTransient(new HelmLockError(ExitCode.Forbidden, "x")), false);
});

Deno.test("holdTimings() scales client-go's 15 s / 10 s / 2 s to the lease duration", () => {
  assert.deepEqual(holdTimings(15), {
    durationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    renewRequestTimeoutMs: 5_000,
  });
  const t = holdTimings(3);
  assert.equal(t.renewDeadlineMs - t.retryPeriodMs, 1_600);
});

Deno.test("HeldLock survives an API server stall of renew deadline minus retry period, whenever it starts", async () => {
  // The stall starts at every phase of the renew cycle, from 0 to 2 s after a renewal,
  // including 10-50 ms before the next is due; it lasts 8 s minus the phase's slack.
  for (const phase of [0, 1, 500, 1_000, 1_500, 1_950, 1_970, 1_990, 1_999]) {
    const { clock, api, lock } = await holding();
    await clock.advance(2_000); // The first renewal, at once answered.
    assert.equal(api.calls.replace, 1);
    const renewedAt = clock.now();
    await clock.advance(phase);
    const resume = api.stall();
    await clock.advance(8_000 - 1);
    assert.equal(lock.lost.aborted, false, `phase ${phase}: lost during the stall`);
    resume();
    await clock.flush();
    // Renewals go on: 20 s later the lock is still ours.
    await clock.advance(20_000);
    assert.equal(lock.lost.aborted, false, `phase ${phase}: lost after the stall`);
    assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, ME);
    assert.ok(lock.validUntil() > renewedAt + 20_000);
    await lock.release();
    assert.equal(api.leases.has(LOCK), false);
  }
});

Deno.test("HeldLock.lost fires at the renew deadline of a longer stall; release deletes a Lease a late renewal kept", async () => {
  const { clock, api, lock } = await holding();
  await clock.advance(2_000);
  const resume = api.stall();
  await clock.advance(10_000 - 1);
  assert.equal(lock.lost.aborted, false);
  await clock.advance(1);
  assert.equal(lock.lost.aborted, true);
  const reason = lock.lost.reason as HelmLockError;
  assert.equal(reason.code, ExitCode.LockLost);
  assert.equal(
    reason.message,
    'Lost the lock on release "app" in namespace "prod" (Lease "helm-lock-app"): no renewal succeeded for 10s: ' +
      "renewals starved (a loaded machine or API server); " +
      "a longer --lock-lease-duration (now 15s) tolerates longer stalls",
  );
  assert.equal(lock.validUntil(), -Infinity);
  resume(); // The renewals sent during the stall land now: the Lease is ours again.
  await clock.flush();
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, ME);
  await lock.release();
  assert.equal(api.leases.has(LOCK), false, "released on the way out, not left to expire");
});

Deno.test("HeldLock.lost fires at once when the Lease is deleted by hand; release deletes nothing", async () => {
  const { clock, api, lock } = await holding();
  await clock.advance(500);
  api.put(LOCK, undefined);
  await clock.flush(); // No time passes: the watch tells.
  assert.equal(lock.lost.aborted, true);
  const reason = lock.lost.reason as HelmLockError;
  assert.equal(reason.code, ExitCode.LockLost);
  assert.match(reason.message, /: the Lease was deleted by someone else$/);
  await lock.release();
  assert.equal(api.calls.delete ?? 0, 0);
});

Deno.test("HeldLock.lost fires at once when the Lease is taken over; theirs stays", async () => {
  const { clock, api, lock } = await holding();
  await clock.advance(500);
  const ours = api.leases.get(LOCK)!;
  api.put(LOCK, { ...ours, spec: { ...ours.spec, holderIdentity: OTHER } });
  await clock.flush();
  assert.equal(lock.lost.aborted, true);
  assert.match((lock.lost.reason as Error).message, new RegExp(`it is now held by "${OTHER}"$`));
  await lock.release();
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, OTHER, "theirs stays");
  assert.equal(api.calls.delete ?? 0, 0);
});

Deno.test("HeldLock notices a deleted Lease without the watch, by the fallback list or the next renewal", async () => {
  const { clock, api, lock } = await holding();
  api.noWatch = true;
  api.breakWatches();
  await clock.flush();
  api.put(LOCK, undefined);
  await clock.flush();
  assert.equal(lock.lost.aborted, false, "no watch event reached it");
  await clock.advance(2_000);
  assert.equal(lock.lost.aborted, true);
  assert.match((lock.lost.reason as Error).message, /the Lease was deleted by someone else$/);
});

Deno.test("HeldLock.lost names verb and user and exits 7 when the renewal is forbidden", async () => {
  const { clock, api, lock } = await holding();
  api.failures.replace = [forbidden("update")];
  await clock.advance(2_000);
  const reason = lock.lost.reason as HelmLockError;
  assert.equal(reason.code, ExitCode.Forbidden);
  assert.equal(
    reason.message,
    'Lost the lock on release "app" in namespace "prod" (Lease "helm-lock-app"): the renewal was refused: Cannot update leases in namespace "prod" as user "ci-bot": forbidden',
  );
  assert.doesNotMatch(reason.message, /no answer/);
  // Refused, but still ours by the record: released on the way out.
  await lock.release();
  assert.equal(api.leases.has(LOCK), false);
});

Deno.test("HeldLock keeps renewing through timeouts and never calls them refusals", async () => {
  const { clock, api, lock } = await holding();
  api.failing.set("replace", "hang");
  await clock.advance(6_500); // The renewal sent at 2 s never gets an answer.
  assert.equal(api.calls.replace, 1);
  api.failing.delete("replace");
  await clock.advance(500); // It times out at 7 s: another goes at once, and lands.
  assert.equal(api.calls.replace, 2);
  await clock.advance(10_000);
  assert.equal(lock.lost.aborted, false);
  await lock.release();
});

Deno.test("HeldLock renews every retry period, 2 s of a 15 s lease", async () => {
  const { clock, api, lock } = await holding();
  const renewTimes: string[] = [];
  await clock.advance(1_999);
  assert.equal(api.calls.replace ?? 0, 0);
  await clock.advance(1);
  renewTimes.push(String(api.leases.get(LOCK)?.spec?.renewTime));
  for (let i = 0; i < 5; i++) {
    await clock.advance(2_000);
    renewTimes.push(String(api.leases.get(LOCK)?.spec?.renewTime));
  }
  assert.equal(api.calls.replace, 6);
  assert.equal(new Set(renewTimes).size, 6);
  assert.equal(lock.lost.aborted, false);
  await lock.release();
});

Deno.test("HeldLock.lost fires when renewals fail for two thirds of the lease duration, not before", async () => {
  const { clock, api, lock } = await holding();
  api.down = true;
  await clock.advance(9_999);
  assert.equal(lock.lost.aborted, false);
  await clock.advance(1);
  assert.equal(lock.lost.aborted, true);
  const reason = lock.lost.reason;
  assert.ok(reason instanceof HelmLockError);
  assert.equal(reason.code, ExitCode.LockLost);
  assert.match(reason.message, /no renewal succeeded for 10s: renewals starved/);
  api.down = false;
  const uid = api.leases.get(LOCK)?.metadata?.uid;
  await lock.release();
  // Nobody took it over meanwhile: still ours by the record, so it is released on the way out.
  assert.deepEqual(api.deletes.map((d) => d.uid), [uid]);
  assert.equal(api.leases.has(LOCK), false);
});

Deno.test("HeldLock never loses a lock it renews, even when every other renewal fails", async () => {
  const { clock, api, lock } = await holding();
  for (let i = 0; i < 20; i++) {
    if (i % 2 === 0) api.failures.replace = [networkError()];
    await clock.advance(5_000);
  }
  assert.equal(lock.lost.aborted, false);
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, ME);
  await lock.release();
});

Deno.test("HeldLock.lost fires at the renew deadline when renewals get no answer", async () => {
  const { clock, api, lock } = await holding();
  api.failing.set("replace", "hang");
  await clock.advance(9_999);
  assert.equal(lock.lost.aborted, false);
  await clock.advance(1);
  assert.equal(lock.lost.aborted, true);
  api.failing.delete("replace");
  await lock.release();
  assert.equal(api.leases.has(LOCK), false);
});

Deno.test("HeldLock.release() deletes guarded by uid and the latest resourceVersion, once", async () => {
  const { clock, api, lock } = await holding({ leaseDurationSeconds: 3 });
  await clock.advance(2_500); // Renewals (every 400 ms) moved the resourceVersion.
  const meta = api.leases.get(LOCK)?.metadata;
  assert.ok(Number(meta?.resourceVersion) > 102, "renewed");
  await lock.release();
  await lock.release();
  assert.deepEqual(api.deletes, [{
    name: LOCK,
    uid: meta?.uid,
    resourceVersion: meta?.resourceVersion,
  }]);
  assert.equal(api.leases.has(LOCK), false);
});

Deno.test("HeldLock.release() does not wait for a renewal in flight", async () => {
  const { clock, api, lock } = await holding();
  api.failing.set("replace", "hang");
  await clock.advance(5_000); // The renewal is sent and never answered.
  assert.equal(api.calls.replace, 1);
  api.failing.delete("replace"); // Only that one request stalls.
  let released = false;
  lock.release().then(() => released = true);
  await clock.flush();
  assert.equal(released, true, "released with no time passing");
  assert.equal(api.leases.has(LOCK), false);
  assert.equal(lock.lost.aborted, false);
});

Deno.test("HeldLock.release() retries from a fresh read when a renewal in flight lands first", async () => {
  const { clock, api, lock } = await holding();
  const resume = api.stall();
  await clock.advance(2_000); // The renewal is sent and not answered yet.
  assert.equal(api.calls.replace, 1);
  const releasing = lock.release();
  assert.equal(api.calls.delete, 1, "the delete went out at once");
  resume(); // The renewal lands first: the delete's precondition fails.
  await clock.flush();
  await releasing;
  assert.equal(api.deletes.length, 2);
  assert.notEqual(api.deletes[0]!.resourceVersion, api.deletes[1]!.resourceVersion);
  assert.equal(api.leases.has(LOCK), false);
  assert.equal(lock.lost.aborted, false);
});

Deno.test("HeldLock.release() clears the holder when delete preconditions are refused", async () => {
  const { api, lock } = await holding();
  api.failures.delete = [status(422, "Unprocessable")];
  await lock.release();
  const lease = api.leases.get(LOCK);
  assert.ok(lease, "the Lease stays");
  assert.equal(lease.spec?.holderIdentity, undefined);
  assert.equal(lease.metadata?.annotations?.["helm-lock.dev/released"], "true");
});

Deno.test("HeldLock.release() clears the holder without delete permission and says once which verb is missing", async () => {
  const { api, lock, warnings } = await holding();
  api.failures.delete = [forbidden("delete")];
  await lock.release();
  await lock.release();
  const lease = api.leases.get(LOCK);
  assert.ok(lease, "the Lease stays");
  assert.equal(lease.spec?.holderIdentity, undefined, "but nobody holds it");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /lacks "delete" on leases in namespace "prod"/);
});

Deno.test("HeldLock.release() throws naming both verbs when neither delete nor update is allowed", async () => {
  const { api, lock } = await holding();
  api.failures.delete = [forbidden("delete")];
  api.failures.replace = [forbidden("update")];
  await assert.rejects(lock.release(), (e: unknown) => {
    assert.ok(e instanceof HelmLockError);
    assert.equal(e.code, ExitCode.Forbidden);
    assert.match(
      e.message,
      /Cannot release the lock \(Lease "helm-lock-app"\) in namespace "prod" as user "ci": forbidden to delete and to update leases/,
    );
    return true;
  });
});

Deno.test("HeldLock.validUntil() is the last renewal's send time plus the renew deadline, -Infinity once released", async () => {
  const { clock, api, lock } = await holding();
  const acquiredAt = clock.now();
  assert.equal(lock.validUntil(), acquiredAt + 10_000);
  await clock.advance(2_000); // The first renewal, sent at 2 s (the retry period).
  assert.equal(lock.validUntil(), acquiredAt + 12_000);
  api.down = true;
  await clock.advance(2_000); // A failed renewal does not extend it.
  assert.equal(lock.validUntil(), acquiredAt + 12_000);
  api.down = false;
  await lock.release();
  assert.equal(lock.validUntil(), -Infinity);
});

Deno.test("takeLock() keeps waiting when a takeover gets no answer, and takes the lock later", async () => {
  const clock = new FakeClock();
  const api = new FakeApi(clock);
  api.put(LOCK, {
    metadata: { labels: releaseLabels("app") },
    spec: { holderIdentity: OTHER, leaseDurationSeconds: 15 },
  });
  const box: { result?: unknown } = {};
  takeLock({ ...options(clock, api, []), timeoutMs: 120_000 }).then(
    (l) => box.result = l,
    (e) => box.result = e,
  );
  await clock.advance(14_000);
  const resume = api.stall(); // A 30 s freeze across the expiry.
  await clock.advance(30_000);
  assert.equal(box.result, undefined, "still waiting");
  resume();
  await clock.advance(30_000);
  const got = box.result as QueuedLock | Error | undefined;
  assert.ok(got && !(got instanceof Error), `taken, not ${got}`);
  assert.equal(api.leases.get(LOCK)?.spec?.holderIdentity, ME);
  await got.release();
  assert.equal(api.leases.has(LOCK), false);
});
