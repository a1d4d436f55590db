/**
 * Unit tests of the holder's fault handling (lib/lock/hold.ts) on a fake clock and a fake
 * API server: stalls, late answers, a deleted or taken-over Lease, refusals and release.
 */
import assert from "node:assert/strict";
import { ApiException } from "@kubernetes/client-node";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { holdTimings, isTransient } from "../../lib/lock/context.ts";
import { acquireLock, type HeldLock, type LockOptions } from "../../lib/lock/lock.ts";
import { FakeClock, FakeLeaseServer, unusedClient } from "../support/fake_lease.ts";

const ME = "runner-1-42-aaaaaaaaaaaaaaaa";
const OTHER = "runner-2-77-bbbbbbbbbbbbbbbb";

async function holding(extra: Partial<LockOptions> = {}) {
  const clock = new FakeClock();
  const server = new FakeLeaseServer();
  const warnings: string[] = [];
  const lock: HeldLock = await acquireLock({
    client: unusedClient,
    namespace: "prod",
    release: "app",
    identity: ME,
    annotations: {},
    timeoutMs: 600_000,
    api: server,
    clock,
    sleep: clock.sleep,
    random: () => 0.5,
    user: "ci",
    server: "https://k8s.example:6443",
    warn: (line) => warnings.push(line),
    ...extra,
  });
  return { clock, server, lock, warnings };
}

function forbidden(verb: string): ApiException<string> {
  const message =
    `leases.coordination.k8s.io "helm-lock-app" is forbidden: User "ci-bot" cannot ${verb} resource "leases"`;
  return new ApiException(403, "Forbidden", JSON.stringify({ code: 403, message }), {});
}

Deno.test("isTransient() retries timeouts, network errors, 429 and 5xx; only other answers are refusals", () => {
  assert.equal(isTransient(new DOMException("no answer within 10 s", "TimeoutError")), true);
  assert.equal(isTransient(new TypeError("fetch failed")), true);
  assert.equal(isTransient(new ApiException(503, "Unavailable", "{}", {})), true);
  assert.equal(isTransient(new ApiException(429, "Too many", "{}", {})), true);
  assert.equal(isTransient(forbidden("update")), false);
  assert.equal(isTransient(new ApiException(422, "Invalid", "{}", {})), false);
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
    const { clock, server, lock } = await holding();
    await clock.advance(2_000); // The first renewal, at once answered.
    const renewedAt = clock.now();
    await clock.advance(phase);
    const resume = server.stall();
    await clock.advance(8_000 - 1);
    assert.equal(lock.lost.aborted, false, `phase ${phase}: lost during the stall`);
    resume();
    await clock.flush();
    // Renewals go on: 20 s later the lock is still ours.
    await clock.advance(20_000);
    assert.equal(lock.lost.aborted, false, `phase ${phase}: lost after the stall`);
    assert.equal(server.lease?.spec?.holderIdentity, ME);
    assert.ok(lock.validUntil() > renewedAt + 20_000);
    await lock.release();
    assert.equal(server.lease, undefined);
  }
});

Deno.test("HeldLock.lost fires at the renew deadline of a longer stall; release deletes a Lease a late renewal kept", async () => {
  const { clock, server, lock } = await holding();
  await clock.advance(2_000);
  const resume = server.stall();
  await clock.advance(10_000);
  assert.equal(lock.lost.aborted, true);
  assert.match(
    String((lock.lost.reason as Error).message),
    /no renewal succeeded for 10s: renewals starved .*--lock-lease-duration \(now 15s\)/,
  );
  assert.equal(lock.validUntil(), -Infinity);
  resume(); // The renewals sent during the stall land now: the Lease is ours again.
  await clock.flush();
  assert.equal(server.lease?.spec?.holderIdentity, ME);
  await lock.release();
  assert.equal(server.lease, undefined, "released on the way out, not left to expire");
});

Deno.test("HeldLock.lost fires at once when the Lease is deleted by hand", async () => {
  const { clock, server, lock } = await holding();
  await clock.advance(500);
  server.put(undefined);
  await clock.flush(); // No time passes: the watch tells.
  assert.equal(lock.lost.aborted, true);
  const reason = lock.lost.reason as HelmLockError;
  assert.equal(reason.code, ExitCode.LockLost);
  assert.match(reason.message, /: the Lease was deleted by someone else$/);
  await lock.release();
  assert.equal(server.calls.delete, 0);
});

Deno.test("HeldLock.lost fires at once when the Lease is taken over", async () => {
  const { clock, server, lock } = await holding();
  await clock.advance(500);
  server.put({ ...server.lease, spec: { ...server.lease?.spec, holderIdentity: OTHER } });
  await clock.flush();
  assert.equal(lock.lost.aborted, true);
  assert.match((lock.lost.reason as Error).message, new RegExp(`it is now held by "${OTHER}"$`));
  await lock.release();
  assert.equal(server.lease?.spec?.holderIdentity, OTHER, "theirs stays");
});

Deno.test("HeldLock notices a deleted Lease at the next renewal when the watch is down", async () => {
  const { clock, server, lock } = await holding({});
  server.breakWatches();
  server.watchDown = true;
  await clock.flush();
  server.put(undefined);
  await clock.advance(1_999);
  assert.equal(lock.lost.aborted, false);
  await clock.advance(1);
  assert.equal(lock.lost.aborted, true);
});

Deno.test("HeldLock.lost names verb and user and exits 7 when the renewal is forbidden", async () => {
  const { clock, server, lock } = await holding();
  server.failures.replace = [forbidden("update")];
  await clock.advance(2_000);
  const reason = lock.lost.reason as HelmLockError;
  assert.equal(reason.code, ExitCode.Forbidden);
  assert.equal(
    reason.message,
    'Lost the lock on release "app" in namespace "prod" (Lease "helm-lock-app"): the renewal was refused: Cannot update leases in namespace "prod" as user "ci-bot": forbidden',
  );
  assert.doesNotMatch(reason.message, /no answer/);
  await lock.release();
});

Deno.test("HeldLock keeps renewing through timeouts and never calls them refusals", async () => {
  const { clock, server, lock } = await holding();
  server.hang.add("replace");
  await clock.advance(6_500); // The renewal sent at 2 s never gets an answer.
  assert.equal(server.calls.replace, 1);
  server.hang.clear();
  await clock.advance(500); // It times out at 7 s: another goes at once, and lands.
  assert.equal(server.calls.replace, 2);
  await clock.advance(10_000);
  assert.equal(lock.lost.aborted, false);
  await lock.release();
});

Deno.test("HeldLock.release() clears the holder without delete permission and says once which verb is missing", async () => {
  const { server, lock, warnings } = await holding();
  server.failures.delete = [forbidden("delete")];
  await lock.release();
  await lock.release();
  assert.ok(server.lease, "the Lease stays");
  assert.equal(server.lease.spec?.holderIdentity, undefined, "but nobody holds it");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /lacks "delete" on leases in namespace "prod"/);
});

Deno.test("HeldLock.release() throws naming both verbs when neither delete nor update is allowed", async () => {
  const { server, lock } = await holding();
  server.failures.delete = [forbidden("delete")];
  server.failures.replace = [forbidden("update")];
  await assert.rejects(lock.release(), (e: unknown) => {
    assert.ok(e instanceof HelmLockError);
    assert.equal(e.code, ExitCode.Forbidden);
    assert.match(e.message, /Cannot update leases in namespace "prod" as user "ci-bot": forbidden/);
    return true;
  });
});

Deno.test("acquireLock() keeps waiting when a takeover gets no answer, and acquires later", async () => {
  const clock = new FakeClock();
  const server = new FakeLeaseServer();
  server.put({
    metadata: { name: "helm-lock-app" },
    spec: { holderIdentity: OTHER, leaseDurationSeconds: 15 },
  });
  const box: { result?: unknown } = {};
  acquireLock({
    client: unusedClient,
    namespace: "prod",
    release: "app",
    identity: ME,
    annotations: {},
    timeoutMs: 120_000,
    api: server,
    clock,
    sleep: clock.sleep,
    random: () => 0.5,
    user: "ci",
    server: "https://k8s.example:6443",
  }).then((l) => box.result = l, (e) => box.result = e);
  await clock.advance(14_000);
  const resume = server.stall(); // A 30 s freeze across the expiry.
  await clock.advance(30_000);
  assert.equal(box.result, undefined, "still waiting");
  resume();
  await clock.advance(30_000);
  const got = box.result as object | undefined;
  assert.ok(got && !(got instanceof Error), `acquired, not ${got}`);
  assert.equal(server.lease?.spec?.holderIdentity, ME);
  await (got as HeldLock).release();
});
