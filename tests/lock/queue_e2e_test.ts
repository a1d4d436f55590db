/**
 * The deploy queue against the real API server, with separate OS processes queuing
 * (tests/support/lock_worker.ts). Short lease durations keep the suite fast.
 */
import assert from "node:assert/strict";
import { createNamespace, helmEnv, helms, mintUser } from "../support/cluster.ts";
import { FAST } from "../support/charts.ts";
import { run } from "../support/helm.ts";
import { adminLeaseApi, leaseNames } from "../support/leases.ts";
import { adminWorker, type LockProcess } from "../support/lock_procs.ts";
import type { WorkerConfig } from "../support/lock_worker.ts";

const DURATION_S = 3;

function worker(namespace: string, extra: Partial<WorkerConfig> = {}): LockProcess {
  return adminWorker(namespace, { leaseDurationSeconds: DURATION_S, queue: "fifo", ...extra });
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
  // The job behind the dead waiter judged it gone and removed its ticket: nothing is left.
  assert.deepEqual(await leaseNames(namespace), []);
});

Deno.test("a Role without delete: tickets are cleared and reused, one stays, never a growing pile", async () => {
  const namespace = await createNamespace("queue-nodelete");
  const kubeconfig = await mintUser({
    name: "no-delete",
    namespace,
    rules: [{
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      verbs: ["get", "list", "watch", "create", "update"],
    }],
  });
  for (let round = 0; round < 4; round++) {
    const holder = worker(namespace, { kubeconfig, mode: "hold" });
    await holder.next("acquired", 20_000);
    const waiter = worker(namespace, { kubeconfig, holdMs: 100 });
    await waiter.next("queued", 20_000);
    await holder.send();
    const releasing = (await holder.next("releasing", 5_000)).t!;
    const acquired = (await waiter.next("acquired", 20_000)).t!;
    // Not after a stale ticket's minute: the cleared ticket is no ticket.
    assert.ok(acquired - releasing < 3_000, `round ${round}: took ${acquired - releasing} ms`);
    assert.equal(await holder.close(), 0);
    assert.equal(await waiter.close(), 0);
  }
  const left = (await adminLeaseApi().listNamespacedLease({ namespace })).items;
  const tickets = left.filter((l) => l.metadata?.name?.startsWith("helm-lock.ticket."));
  assert.equal(tickets.length, 1, `one spare ticket: ${left.map((l) => l.metadata?.name)}`);
  assert.ok(left.every((l) => !l.spec?.holderIdentity), "nothing is held or queued");
  assert.equal(left.length, 2, "the released lock and one spare ticket");
});

const ANOTHER_OPERATION = /another operation \(install\/upgrade\/rollback\) is in progress/;

for (const helm of helms) {
  Deno.test(`${helm.name}: 8 jobs that start waiting 200 ms apart deploy in that order with helm, 5 runs in a row`, async () => {
    const namespace = await createNamespace(`queue-fifo-${helm.name}`);
    const env = await helmEnv();
    const helmIn = (args: string[]) => run(helm.bin, [...args, "-n", namespace], env);
    assert.equal((await helmIn(["install", "app", FAST])).code, 0);
    const ROUNDS = 5;
    // The jobs are started (deno and client-node loaded) first, then told to start waiting:
    // the queue orders waiters, not process start-up.
    const jobs = Array.from({ length: 8 }, (_, i) =>
      worker(namespace, {
        leaseDurationSeconds: 15,
        gate: true,
        rounds: ROUNDS,
        run: {
          argv: [helm.bin, "upgrade", "app", FAST, "-n", namespace, "--set", `tag=j${i + 1}`],
          env,
        },
      }));
    let codes: number[] = [];
    try {
      for (const j of jobs) await j.next("ready", 60_000);
      for (let round = 0; round < ROUNDS; round++) {
        // Each job starts waiting 200 ms after the one before it has taken its place: a ticket,
        // or the lock itself when it found the queue empty. (Not 200 ms after it was told to:
        // on a loaded 2-core machine taking a ticket has been seen to take over a second.)
        for (const j of jobs) {
          await j.send();
          await j.next("placed", 30_000, round);
          await new Promise((r) => setTimeout(r, 200));
        }
        const turns = await Promise.all(jobs.map(async (j, i) => {
          const ran = await j.next("ran", 60_000, round);
          assert.equal(ran.code, 0, String(ran.output));
          assert.doesNotMatch(String(ran.output), ANOTHER_OPERATION);
          return {
            job: i + 1,
            acquired: (await j.next("acquired", 1_000, round)).t!,
            releasing: (await j.next("releasing", 5_000, round)).t!,
          };
        }));
        turns.sort((a, b) => a.acquired - b.acquired);
        assert.deepEqual(turns.map((t) => t.job), [1, 2, 3, 4, 5, 6, 7, 8], `run ${round + 1}`);
        for (let i = 1; i < turns.length; i++) {
          assert.ok(
            turns[i]!.acquired > turns[i - 1]!.releasing,
            `turns ${i - 1} and ${i} overlap`,
          );
        }
        for (const j of jobs) await j.next("released", 5_000, round);
        const values = await helmIn(["get", "values", "app", "-o", "json"]);
        assert.equal(
          JSON.parse(values.stdout).tag,
          "j8",
          `run ${round + 1} ends with job 8's values`,
        );
      }
    } finally {
      codes = await Promise.all(jobs.map((j) => j.close()));
    }
    assert.deepEqual(codes, [0, 0, 0, 0, 0, 0, 0, 0]);
  });
}
