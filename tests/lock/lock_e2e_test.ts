/**
 * The lock against the real API server, with separate OS processes contending
 * (tests/support/lock_worker.ts). Short lease durations keep the suite fast.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { Annotation, lockAnnotations } from "../../lib/lock/identity.ts";
import { takeLock as acquireLock } from "../../lib/lock/take.ts";
import { adminKubeconfig, createNamespace, kubeClientFor, mintUser } from "../support/cluster.ts";
import { adminLeaseApi } from "../support/leases.ts";
import { adminWorker, type LockProcess } from "../support/lock_procs.ts";
import type { WorkerConfig } from "../support/lock_worker.ts";

const DURATION_S = 3;

function worker(namespace: string, extra: Partial<WorkerConfig> = {}): LockProcess {
  return adminWorker(namespace, { leaseDurationSeconds: DURATION_S, ...extra });
}

function leases(namespace: string) {
  const api = adminLeaseApi();
  return {
    api,
    read: () => api.readNamespacedLease({ name: "helm-lock-app", namespace }),
    list: async () => (await api.listNamespacedLease({ namespace })).items,
  };
}

Deno.test("acquireLock() gives 8 contending processes one turn each, never overlapping", async () => {
  const namespace = await createNamespace("lock-contend");
  const startedAt = Date.now();
  const procs = Array.from({ length: 8 }, () => worker(namespace, { holdMs: 300 }));
  try {
    const turns = await Promise.all(procs.map(async (p) => ({
      acquired: (await p.next("acquired", 60_000)).t!,
      releasing: (await p.next("releasing", 60_000)).t!,
    })));
    turns.sort((a, b) => a.acquired - b.acquired);
    for (let i = 1; i < turns.length; i++) {
      const [before, after] = [turns[i - 1]!, turns[i]!];
      assert.ok(
        after.acquired > before.releasing,
        `turn ${i} acquired at ${after.acquired}, before turn ${
          i - 1
        } let go at ${before.releasing}`,
      );
    }
    assert.equal(turns.length, 8);
    assert.ok(Date.now() - startedAt < 60_000, "all 8 turns within the deadline");
  } finally {
    for (const code of await Promise.all(procs.map((p) => p.close()))) assert.equal(code, 0);
  }
});

Deno.test("acquireLock() takes over from a SIGKILLed holder after the lease duration, not before", async () => {
  const namespace = await createNamespace("lock-kill");
  const holder = worker(namespace, { mode: "hold" });
  await holder.next("acquired", 20_000);
  const waiter = worker(namespace, { timeoutMs: 30_000 });
  try {
    // Queued behind the holder; its watch runs from its list, before its ticket was written.
    await waiter.next("queued", 20_000);
    // Let the waiter see renewals, so that it judges from a live record.
    await renewals(namespace, 2);
    assert.equal(waiter.events.some((e) => e.event === "acquired"), false);
    holder.kill("SIGKILL");
    const killedAt = Date.now();
    await holder.close();
    const lease = await leases(namespace).read();
    const lastRenew = new Date(String(lease.spec?.renewTime)).getTime();
    const acquired = (await waiter.next("acquired", 20_000)).t!;
    // The waiter saw the last renewal no earlier than it was written.
    assert.ok(
      acquired >= lastRenew + DURATION_S * 1000,
      `took over ${acquired - lastRenew} ms after the last renewal, lease is ${DURATION_S} s`,
    );
    assert.ok(acquired - killedAt < DURATION_S * 1000 + 3_000, "took over soon after expiry");
  } finally {
    await holder.close();
    assert.equal(await waiter.close(), 0);
  }
});

for (const [skew, offsetMs] of [["future", 3_600_000], ["past", -3_600_000]] as const) {
  Deno.test(`acquireLock() judges a renewTime in the ${skew} by its own observation time`, async () => {
    const namespace = await createNamespace(`lock-skew-${skew}`);
    // A holder whose clock is an hour off, gone since its only write.
    const time = new k8s.V1MicroTime(Date.now() + offsetMs);
    await leases(namespace).api.createNamespacedLease({
      namespace,
      body: {
        metadata: { name: "helm-lock-app" },
        spec: {
          holderIdentity: "skewed-holder",
          leaseDurationSeconds: DURATION_S,
          acquireTime: time,
          renewTime: time,
        },
      },
    });
    const waiter = worker(namespace, { timeoutMs: 20_000 });
    try {
      const { waitedMs } = await waiter.next("acquired", 25_000);
      // Not at once (a renewTime far in the past), not after an hour (far in the future).
      assert.ok(waitedMs! >= DURATION_S * 1000 - 50, `waited only ${waitedMs} ms`);
      assert.ok(waitedMs! < DURATION_S * 1000 + 3_000, `waited ${waitedMs} ms`);
    } finally {
      assert.equal(await waiter.close(), 0);
    }
  });
}

Deno.test("acquireLock() hands a gracefully released lock to the next waiter before it expires", async () => {
  const namespace = await createNamespace("lock-handoff");
  const holder = worker(namespace, { mode: "hold", leaseDurationSeconds: 15 });
  await holder.next("acquired", 20_000);
  const waiter = worker(namespace, { leaseDurationSeconds: 15 });
  try {
    await waiter.next("queued", 20_000);
    await holder.send();
    const releasing = (await holder.next("releasing", 5_000)).t!;
    const acquired = (await waiter.next("acquired", 15_000)).t!;
    assert.ok(acquired - releasing < 15_000, `handed over after ${acquired - releasing} ms`);
  } finally {
    assert.equal(await holder.close(), 0);
    assert.equal(await waiter.close(), 0);
  }
});

Deno.test("acquireLock() gives up at its deadline naming the holder and its CI job", async () => {
  const namespace = await createNamespace("lock-deadline");
  const job = "https://gitlab.example/acme/app/-/jobs/4242";
  const holder = worker(namespace, { mode: "hold", env: { CI_JOB_URL: job } });
  await holder.next("acquired", 20_000);
  const waiter = worker(namespace, { timeoutMs: 2_000 });
  try {
    const identity = (await leases(namespace).read()).spec?.holderIdentity ?? "";
    await waiter.next("ready", 20_000);
    const startedAt = Date.now();
    const error = await waiter.next("error", 10_000);
    assert.ok(Date.now() - startedAt >= 1_500, "waited about the 2 s lock timeout");
    assert.equal(error.code, ExitCode.LockTimeout);
    const message = error.message ?? "";
    assert.match(message, /^Cannot acquire the lock on release "app" in namespace "/);
    assert.ok(message.includes(`"${identity}"`), message);
    assert.ok(message.includes(job), message);
    assert.ok(message.includes("--lock-timeout"), message);
    assert.equal(await waiter.close(), 10 + ExitCode.LockTimeout);
  } finally {
    await holder.close();
  }
});

async function lockAs(
  kubeconfig: string,
  namespace: string,
  timeoutMs = 5_000,
  leaseDurationSeconds = DURATION_S,
  onQueued?: (ticket: string) => void,
) {
  return await acquireLock({
    client: kubeClientFor(kubeconfig),
    namespace,
    release: "app",
    identity: `test-${crypto.randomUUID()}`,
    annotations: lockAnnotations({ command: "upgrade app", env: {} }),
    timeoutMs,
    leaseDurationSeconds,
    ...(onQueued ? { onQueued } : {}),
  });
}

Deno.test("acquireLock() reports a user without Lease rights clearly and writes nothing", async () => {
  const namespace = await createNamespace("lock-rbac");
  const kubeconfig = await mintUser({
    name: "no-leases",
    namespace,
    rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }],
  });
  await assert.rejects(lockAs(kubeconfig, namespace), (err) => {
    assert.ok(err instanceof HelmLockError);
    assert.equal(err.code, ExitCode.Forbidden);
    assert.match(
      err.message,
      /^Cannot list leases in namespace "lock-rbac-[^"]+" as user "[^"]*no-leases[^"]*": forbidden$/,
    );
    return true;
  });
  assert.deepEqual(await leases(namespace).list(), []);
});

Deno.test("acquireLock() names the create verb for a user who may only read Leases", async () => {
  const namespace = await createNamespace("lock-rbac-ro");
  const kubeconfig = await mintUser({
    name: "read-leases",
    namespace,
    rules: [{
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      verbs: ["get", "list", "watch"],
    }],
  });
  await assert.rejects(lockAs(kubeconfig, namespace), {
    name: "HelmLockError",
    code: ExitCode.Forbidden,
    message: new RegExp(
      `^Cannot create leases in namespace "${namespace}" as user "[^"]*read-leases[^"]*": forbidden$`,
    ),
  });
  assert.deepEqual(await leases(namespace).list(), []);
});

Deno.test("acquireLock() falls back to polling when RBAC refuses the watch", async () => {
  const namespace = await createNamespace("lock-nowatch");
  const kubeconfig = await mintUser({
    name: "no-watch",
    namespace,
    rules: [{
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      verbs: ["get", "list", "create", "update", "delete"],
    }],
  });
  // The Role has no "watch": the waiter lists the release's Leases again now and then and sees
  // the release at its next list (without that fallback it would wait out its 30 s).
  const holder = await lockAs(adminKubeconfig(), namespace, 5_000, 10);
  let onQueued = () => {};
  const queued = new Promise<void>((resolve) => onQueued = resolve);
  const waiting = lockAs(kubeconfig, namespace, 30_000, DURATION_S, () => onQueued());
  await settledWithin(queued, 20_000, "onQueued of the waiter (its ticket written)");
  await holder.release();
  const releasedAt = Date.now();
  const lock = await waiting;
  const tookMs = Date.now() - releasedAt;
  assert.ok(tookMs < 20_000, `acquired ${tookMs} ms after the release`);
  // The waiter's ticket is deleted in the background once it holds the lock: only the lock stays.
  let left = await leases(namespace).list();
  for (let i = 0; i < 50 && left.length > 1; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = await leases(namespace).list();
  }
  assert.equal(left.length, 1, JSON.stringify(left));
  await lock.release();
});

Deno.test("acquireLock() fires lost when the Lease is deleted behind the holder", async () => {
  const namespace = await createNamespace("lock-lost-del");
  const lock = await lockAs(adminKubeconfig(), namespace);
  try {
    const lease = await leases(namespace).read();
    await leases(namespace).api.deleteNamespacedLease({ name: "helm-lock-app", namespace });
    const reason = await lostWithin(lock.lost, DURATION_S * 1000);
    assert.equal(reason.code, ExitCode.LockLost);
    assert.match(reason.message, /deleted/);
    assert.ok(lease.metadata?.uid);
  } finally {
    await lock.release();
  }
});

Deno.test("acquireLock() fires lost on a takeover and its release leaves the new holder alone", async () => {
  const namespace = await createNamespace("lock-lost-take");
  const lock = await lockAs(adminKubeconfig(), namespace);
  const { api, read } = leases(namespace);
  const lease = await read();
  lease.spec = { ...lease.spec, holderIdentity: "intruder" };
  lease.metadata!.annotations = { [Annotation.ciJobUrl]: "https://ci.example/jobs/9" };
  await api.replaceNamespacedLease({ name: "helm-lock-app", namespace, body: lease });
  const reason = await lostWithin(lock.lost, DURATION_S * 1000);
  assert.equal(reason.code, ExitCode.LockLost);
  assert.match(reason.message, /held by "intruder" \(CI job https:\/\/ci\.example\/jobs\/9\)/);
  await lock.release();
  assert.equal((await read()).spec?.holderIdentity, "intruder");
});

Deno.test("HeldLock renews the Lease on the real API server", async () => {
  const namespace = await createNamespace("lock-renew");
  const lock = await lockAs(adminKubeconfig(), namespace);
  try {
    const first = await leases(namespace).read();
    const acquired = new Date(String(first.spec?.acquireTime)).getTime();
    // Past the renew deadline (2 s of a 3 s lease): a lock whose renewals failed is lost by then.
    const later = await leaseWhen(
      namespace,
      "a renewal written 2 s after acquiring",
      (l) => renewTime(l) - acquired >= 2_000,
    );
    const renewed = renewTime(later);
    assert.ok(renewed - acquired >= 2_000, `renewed ${renewed - acquired} ms after acquiring`);
    assert.equal(later.spec?.holderIdentity, first.spec?.holderIdentity);
    assert.equal(lock.lost.aborted, false);
  } finally {
    await lock.release();
  }
});

Deno.test("HeldLock.release() deletes the Lease and is idempotent", async () => {
  const namespace = await createNamespace("lock-release");
  const lock = await lockAs(adminKubeconfig(), namespace);
  assert.equal((await leases(namespace).list()).length, 1);
  await Promise.all([lock.release(), lock.release()]);
  await lock.release();
  assert.deepEqual(await leases(namespace).list(), []);
  assert.equal(lock.lost.aborted, false);
});

async function lostWithin(signal: AbortSignal, ms: number): Promise<HelmLockError> {
  if (!signal.aborted) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve, reject) => {
      signal.addEventListener("abort", () => resolve(), { once: true });
      timer = setTimeout(() => reject(new Error(`lost did not fire within ${ms} ms`)), ms);
    }).finally(() => clearTimeout(timer));
  }
  assert.ok(signal.reason instanceof HelmLockError);
  return signal.reason;
}

function renewTime(lease: k8s.V1Lease): number {
  return new Date(String(lease.spec?.renewTime)).getTime();
}

/** Reads the lock's Lease every 50 ms until `ready(lease)`; fails after `ms` naming `what`. */
async function leaseWhen(
  namespace: string,
  what: string,
  ready: (lease: k8s.V1Lease) => boolean,
  ms = 10_000,
): Promise<k8s.V1Lease> {
  const until = Date.now() + ms;
  for (;;) {
    const lease = await leases(namespace).read().catch(() => undefined);
    if (lease && ready(lease)) return lease;
    if (Date.now() > until) {
      throw new Error(`No ${what} within ${ms} ms: ${JSON.stringify(lease?.spec)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the lock's Lease has been renewed `n` times (its renewTime changed). */
async function renewals(namespace: string, n: number): Promise<void> {
  let last = renewTime(await leases(namespace).read());
  for (let i = 1; i <= n; i++) {
    const seen = last;
    last = renewTime(
      await leaseWhen(namespace, `renewal ${i} of ${n}`, (l) => renewTime(l) !== seen),
    );
  }
}

/** Waits for `p` to settle, failing after `ms` naming what it waited for. */
async function settledWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`No ${what} within ${ms} ms`)), ms);
  });
  return await Promise.race([p, late]).finally(() => clearTimeout(timer));
}
