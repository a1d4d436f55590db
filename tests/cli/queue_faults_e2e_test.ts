/**
 * The deploy queue under faults end to end (issue 26): real helm-lock processes, the real API server, helm 3
 * and helm 4.
 *
 * - A waiter SIGKILLed in the middle of a queue of five delays the job behind it once, by at
 *   most one lease duration, and the deploys after the queue not at all (no ticket is left).
 * - A burst of 20 jobs on one release costs at most 8 Lease requests per job, counted by the
 *   API server itself (its audit log, tests/support/lease_requests.ts).
 * - A holder of today's released build (main's commit below, run from `git archive`) hands
 *   the lock over at once.
 * - `lock-status`, `lock-list` (`-o json`) and `lock-unlock` on a dead ticket: shown as dead,
 *   removed without `--force`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { PERMISSIONS } from "../../scripts/compile.ts";
import { lockName, releaseLabels } from "../../lib/lock/names.ts";
import { adminKubeconfig, createNamespace, helmEnv, helms } from "../support/cluster.ts";
import { run } from "../support/helm.ts";
import { LockProcess } from "../support/cli.ts";
import { leaseRequestsIn } from "../support/lease_requests.ts";
import { checkOut } from "../support/git_archive.ts";
import { adminLeaseApi, leaseNames } from "../support/leases.ts";
import { FAST, SLOW } from "../support/charts.ts";

const root = new URL("../..", import.meta.url).pathname;
/** The build every user has today: main before the queue of tickets ordered by the server. */
const RELEASED = "8f89c34";
/** Helm's longest release name: the lock's name is then 63 characters, a ticket's is cut. */
const LONG_RELEASE = `q${"0123456789".repeat(5)}ab`;

/** A lock held by a job that is not a helm-lock of this run: released by deleting it. */
async function foreignHolder(namespace: string, release: string, seconds: number) {
  await adminLeaseApi().createNamespacedLease({
    namespace,
    body: {
      metadata: { name: lockName(release), labels: releaseLabels(release) },
      spec: {
        holderIdentity: "test-holder",
        leaseDurationSeconds: seconds,
        acquireTime: new k8s.V1MicroTime(),
        renewTime: new k8s.V1MicroTime(),
      },
    },
  });
}

function job(n: number): string {
  return `https://ci.example.com/jobs/${n}`;
}

/**
 * Set up while the other tests run: a waiter behind a foreign holder (lease 5 s), SIGKILLed
 * once it queued. Its ticket ages on the server's clock meanwhile.
 */
const deadTicket = (async () => {
  const namespace = await createNamespace("queue-dead");
  const release = "app";
  await foreignHolder(namespace, release, 5);
  const env = await helmEnv({ HELM_BIN: helms[0]!.bin, CI_JOB_URL: job(1) });
  const waiter = new LockProcess(["upgrade", "--install", release, FAST, "-n", namespace], env);
  await waiter.waitForLine(/waiting for lock/);
  waiter.child.kill("SIGKILL");
  await waiter.output();
  return { namespace, release, killedAt: Date.now() };
})();

for (const helm of helms) {
  Deno.test(`${helm.name}: a waiter SIGKILLed in a queue of 5 delays the next once, the 3 deploys after it not at all`, async () => {
    const namespace = await createNamespace(`queue-kill-${helm.name}`);
    const release = LONG_RELEASE;
    const DURATION = 5;
    await foreignHolder(namespace, release, 3600);
    const waiters: LockProcess[] = [];
    for (let n = 1; n <= 5; n++) {
      const env = await helmEnv({ HELM_BIN: helm.bin, CI_JOB_URL: job(n) });
      const w = new LockProcess([
        "upgrade",
        "--install",
        release,
        FAST,
        "-n",
        namespace,
        "--lock-lease-duration",
        `${DURATION}s`,
      ], env);
      // One at a time: each has joined the queue before the next starts.
      await w.waitForLine(/waiting for lock/);
      waiters.push(w);
    }
    const line = (w: LockProcess) => w.stderrLines.find((l) => /waiting for lock/.test(l.line))!;
    assert.match(
      line(waiters[3]!).line,
      /4th in line behind CI job https:\/\/ci\.example\.com\/jobs\/3/,
    );
    waiters[2]!.child.kill("SIGKILL");
    await waiters[2]!.output();
    await adminLeaseApi().deleteNamespacedLease({ name: lockName(release), namespace });

    const outs = [];
    for (const i of [0, 1, 3, 4]) outs.push({ i, out: await waiters[i]!.output() });
    for (const { i, out } of outs) assert.equal(out.code, 0, `job ${i + 1}: ${out.stderr}`);
    const acquired = (i: number) => waiters[i]!.lineAt(/acquired lock/)!;
    const released = (i: number) => waiters[i]!.lineAt(/released lock/)!;
    assert.ok(acquired(0) < acquired(1) && acquired(1) < acquired(3) && acquired(3) < acquired(4));
    // Behind the dead ticket: at most one lease duration (and the run's own start-up) lost.
    const lost = acquired(3) - released(1);
    assert.ok(lost < (DURATION + 3) * 1000, `the job behind the dead ticket waited ${lost} ms`);
    assert.deepEqual(await leaseNames(namespace), [], "no ticket or lock is left");

    for (let n = 6; n <= 8; n++) {
      const env = await helmEnv({ HELM_BIN: helm.bin, CI_JOB_URL: job(n) });
      const count = await leaseRequestsIn(namespace, adminKubeconfig());
      const out = await new LockProcess(
        ["upgrade", "--install", release, FAST, "-n", namespace],
        env,
      ).output();
      const counted = await count();
      assert.equal(out.code, 0, out.stderr);
      assert.doesNotMatch(out.stderr, /waiting for lock/, `deploy ${n} waited`);
      // list, create, watch, delete, and spares. Not counted: the holder's renewals, as many
      // as helm's run takes retry periods (more on a loaded machine).
      const renewals = counted.byKind["update lock 200"] ?? 0;
      assert.ok(counted.total - renewals <= 6, `deploy ${n}: ${JSON.stringify(counted.byKind)}`);
    }
    const history = await run(helm.bin, ["history", release, "-n", namespace, "-o", "json"], {
      KUBECONFIG: adminKubeconfig(),
    });
    assert.equal(JSON.parse(history.stdout).length, 7, "4 queued and 3 later deploys");
  });
}

Deno.test("a burst of 20 jobs on one release (helm 3 and 4 alternating): at most 8 Lease requests per job, by the API server's count", async () => {
  const namespace = await createNamespace("queue-burst");
  const release = "app";
  const count = await leaseRequestsIn(namespace, adminKubeconfig());
  const jobs = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const env = await helmEnv({ HELM_BIN: helms[i % 2]!.bin, CI_JOB_URL: job(i) });
      return new LockProcess(
        ["upgrade", "--install", release, FAST, "-n", namespace, "--lock-timeout", "5m"],
        env,
      );
    }),
  );
  const outs = await Promise.all(jobs.map((j) => j.output()));
  const counted = await count();
  outs.forEach((o, i) => assert.equal(o.code, 0, `job ${i}: ${o.stderr}`));
  // Not counted: the holders' renewals, as many as helm's runs take retry periods.
  const perJob = (counted.total - (counted.byKind["update lock 200"] ?? 0)) / 20;
  // deno-lint-ignore no-console
  console.log(`burst of 20: ${perJob} Lease requests per job besides renewals`, counted.byKind);
  assert.ok(perJob <= 8, `${perJob} requests per job: ${JSON.stringify(counted.byKind)}`);
  assert.deepEqual(await leaseNames(namespace), [], "no ticket or lock is left");
  const history = await run(helms[0]!.bin, ["history", release, "-n", namespace, "-o", "json"], {
    KUBECONFIG: adminKubeconfig(),
  });
  assert.equal(JSON.parse(history.stdout).length, 10, "helm keeps 10 revisions: all deployed");
});

/** Today's released build, from git: its own main.ts, deno.json and lock file. */
function releasedBuild(): Promise<string> {
  return checkOut(root, RELEASED, "helm-lock-released-");
}

for (const helm of helms) {
  Deno.test(`${helm.name}: a holder of the released build (${RELEASED}) hands the lock over at once`, async () => {
    const namespace = await createNamespace(`queue-old-${helm.name}`);
    const release = "app";
    const old = await releasedBuild();
    const env = await helmEnv({ HELM_BIN: helm.bin });
    try {
      const holder = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          ...PERMISSIONS,
          "--config",
          join(old, "deno.json"),
          join(old, "main.ts"),
          "upgrade",
          "--install",
          release,
          SLOW,
          "-n",
          namespace,
          "--wait",
          "--timeout",
          "4s",
        ],
        env,
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const holderText = new Response(holder.stderr).text();
      // The old build holds the lock (its Lease exists) before the new job starts.
      const until = Date.now() + 30_000;
      while (!(await leaseNames(namespace)).includes(lockName(release))) {
        if (Date.now() > until) {
          throw new Error(`The old build's lock Lease ${lockName(release)} not there within 30 s`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      const waiter = new LockProcess(["upgrade", "--install", release, FAST, "-n", namespace], env);
      const status = await holder.status;
      const holderExit = performance.now();
      const text = await holderText;
      assert.match(text, /acquired lock/, text);
      assert.notEqual(status.code, 0, "the old holder's helm times out waiting");
      const out = await waiter.output();
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, /waiting for lock/, "the new job waited for the old holder");
      const handover = waiter.lineAt(/acquired lock/)! - holderExit;
      // Not after the lease duration (15 s): on the old build's release.
      assert.ok(
        handover < 3_000,
        `the new job took the lock ${handover} ms after the old one's exit`,
      );
    } finally {
      await Deno.remove(old, { recursive: true });
    }
  });
}

// Last: the ticket killed at the start has aged on the server meanwhile.
Deno.test("a dead ticket: lock-status and lock-list -o json show it as dead, lock-unlock removes it", async () => {
  const { namespace, release, killedAt } = await deadTicket;
  // The server judges a ticket dead once it has not seen it written for a minute.
  const wait = killedAt + 63_000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const env = await helmEnv({ HELM_BIN: helms[0]!.bin });
  const cmd = (args: string[]) => new LockProcess([...args, "-n", namespace], env).output();

  const status = await cmd(["lock-status", release, "-o", "json"]);
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  assert.equal(s.queue.length, 1, status.stdout);
  assert.equal(s.queue[0].looksDead, true, status.stdout);
  assert.equal(s.queue[0].ciJobUrl, job(1));
  assert.match(s.queue[0].ticket, /^helm-lock\.ticket\./);
  const table = await cmd(["lock-status", release]);
  assert.match(table.stdout, /QUEUE: +1\. .*https:\/\/ci\.example\.com\/jobs\/1.*\(looks dead\)/);

  const list = await cmd(["lock-list", "-o", "json"]);
  assert.equal(list.code, 0, list.stderr);
  const items = JSON.parse(list.stdout).items;
  assert.equal(items.length, 1, list.stdout);
  assert.equal(items[0].metadata.name, release);
  assert.deepEqual(items[0].queue.map((q: { looksDead: boolean }) => q.looksDead), [true]);

  const unlock = await cmd(["lock-unlock", release]);
  assert.equal(unlock.code, 0, unlock.stderr);
  assert.match(
    unlock.stderr,
    /removed the ticket helm-lock\.ticket\.\S+ of .* \(it was not renewed/,
  );
  assert.match(unlock.stderr, /removed the expired lock/);
  assert.deepEqual(await leaseNames(namespace), [], "nothing is left");
});
