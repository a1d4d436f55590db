/**
 * The deploy queue against the real API server, with separate OS processes queuing
 * (tests/support/lock_worker.ts). Short lease durations keep the suite fast.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { adminKubeConfig, adminKubeconfig, createNamespace } from "../support/cluster.ts";
import { LockProcess } from "../support/lock_procs.ts";
import type { WorkerConfig } from "../support/lock_worker.ts";

const DURATION_S = 3;

function worker(namespace: string, extra: Partial<WorkerConfig> = {}): LockProcess {
  return new LockProcess({
    kubeconfig: adminKubeconfig(),
    namespace,
    release: "app",
    timeoutMs: 60_000,
    leaseDurationSeconds: DURATION_S,
    mode: "release",
    queue: "fifo",
    ...extra,
  });
}

async function leaseNames(namespace: string): Promise<string[]> {
  const api = adminKubeConfig().makeApiClient(k8s.CoordinationV1Api);
  return (await api.listNamespacedLease({ namespace })).items.map((l) => l.metadata?.name ?? "")
    .sort();
}

Deno.test("acquireInOrder() lets a waiter SIGKILLed mid-queue delay the next by at most one lease duration", async () => {
  const namespace = await createNamespace("queue-kill");
  const holder = worker(namespace, { mode: "hold" });
  await holder.next("acquired", 20_000);
  // Joined in this order: each one waits (reports progress) before the next one starts.
  const doomed = worker(namespace);
  await doomed.next("progress", 20_000);
  const next = worker(namespace);
  await next.next("progress", 20_000);
  try {
    doomed.kill("SIGKILL");
    await doomed.close();
    await holder.send();
    const releasing = (await holder.next("releasing", 5_000)).t!;
    const acquired = (await next.next("acquired", 20_000)).t!;
    const delay = acquired - releasing;
    // It kept the dead waiter's turn for one lease duration, and no longer.
    assert.ok(delay >= DURATION_S * 1000 - 300, `took the lock ${delay} ms after the release`);
    assert.ok(delay < DURATION_S * 1000 + 2_000, `took the lock ${delay} ms after the release`);
  } finally {
    assert.equal(await holder.close(), 0);
    assert.equal(await next.close(), 0);
  }
  // The dead waiter's ticket is left to expire; the live ones are gone.
  assert.deepEqual(await leaseNames(namespace), [
    "helm-lock.state.app",
    "helm-lock.ticket-2.app",
  ]);
});

Deno.test("acquireInOrder() and a waiter without the queue (an older helm-lock) all get their turn", async () => {
  const namespace = await createNamespace("queue-mixed");
  const holder = worker(namespace, { mode: "hold" });
  await holder.next("acquired", 20_000);
  const queued = [worker(namespace, { holdMs: 300 }), worker(namespace, { holdMs: 300 })];
  const old = worker(namespace, { holdMs: 300, queue: undefined as never });
  try {
    for (const p of [...queued, old]) await p.next("progress", 20_000);
    await holder.send();
    const turns = await Promise.all([...queued, old].map(async (p) => ({
      acquired: (await p.next("acquired", 30_000)).t!,
      releasing: (await p.next("releasing", 30_000)).t!,
    })));
    turns.sort((a, b) => a.acquired - b.acquired);
    for (let i = 1; i < turns.length; i++) {
      assert.ok(turns[i]!.acquired > turns[i - 1]!.releasing, `turns ${i - 1} and ${i} overlap`);
    }
    // The queue kept its own order whoever else took a turn in between.
    assert.ok(
      (await queued[0]!.next("acquired", 1)).t! < (await queued[1]!.next("acquired", 1)).t!,
    );
  } finally {
    for (const p of [holder, ...queued, old]) assert.equal(await p.close(), 0);
  }
  assert.deepEqual(await leaseNames(namespace), ["helm-lock.state.app"]);
});
