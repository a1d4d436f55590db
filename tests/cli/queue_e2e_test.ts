/**
 * The order of deploys end to end (issue 12): main.ts spawned like a user runs it, real
 * helm 3 and helm 4, the real API server: `--lock-queue newest` and `--lock-order-key`. (FIFO
 * with helm: tests/lock/queue_e2e_test.ts, where jobs can be told when to start waiting.)
 */
import assert from "node:assert/strict";
import { createNamespace, helmEnv, helms } from "../support/cluster.ts";
import { releaseStatus, run } from "../support/helm.ts";
import { LockProcess } from "../support/cli.ts";
import { adminWorker } from "../support/lock_procs.ts";
import { ExitCode } from "../../lib/errors.ts";
import { FAST } from "../support/charts.ts";

const job = (n: number | string) => `https://gitlab.example/acme/app/-/jobs/${n}`;

async function tagOf(
  bin: string,
  namespace: string,
  env: Record<string, string>,
): Promise<string> {
  const out = await run(bin, ["get", "values", "app", "-n", namespace, "-o", "json"], env);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout).tag;
}

for (const helm of helms) {
  const setup = async (prefix: string) => {
    const namespace = await createNamespace(`${prefix}-${helm.name}`);
    const env = await helmEnv({ HELM_BIN: helm.bin });
    const install = await run(helm.bin, ["install", "app", FAST, "-n", namespace], env);
    assert.equal(install.code, 0, install.stderr);
    return { namespace, env };
  };
  const upgrade = (
    namespace: string,
    env: Record<string, string>,
    name: string,
    extra: string[] = [],
  ) =>
    new LockProcess(
      ["upgrade", "app", FAST, "-n", namespace, "--set", `tag=v${name}`, ...extra],
      { ...env, CI_JOB_URL: job(name) },
    );

  Deno.test(`${helm.name}: --lock-queue newest runs only the newest waiter; the older ones exit 8 naming it`, async () => {
    const { namespace, env } = await setup("newest");
    // Job 1 holds the lock (through the queue, like any helm-lock).
    const holder = adminWorker(namespace, {
      mode: "hold",
      queue: "fifo",
      env: { CI_JOB_URL: job(1) },
    });
    await holder.next("acquired", 30_000);
    const waiters: LockProcess[] = [];
    for (const n of [2, 3, 4, 5]) {
      // Jobs 2 and 3 want a green pipeline when superseded.
      const ok = n <= 3 ? ["--lock-superseded-ok"] : [];
      const w = upgrade(namespace, env, String(n), ["--lock-queue", "newest", ...ok]);
      await w.waitForLine(/waiting for lock/);
      waiters.push(w);
    }
    await holder.send();
    assert.equal(await holder.close(), 0);
    const [two, three, four, five] = await Promise.all(waiters.map((w) => w.output()));
    assert.equal(five!.code, 0, five!.stderr);
    assert.match(five!.stderr, /running helm upgrade/);
    for (const [out, code] of [[two!, 0], [three!, 0], [four!, ExitCode.Superseded]] as const) {
      assert.equal(out.code, code, out.stderr);
      assert.doesNotMatch(out.stderr, /running helm/);
      assert.match(out.stderr, /superseded/);
      assert.ok(out.stderr.includes(job(5)), out.stderr);
    }
    assert.equal(await tagOf(helm.bin, namespace, env), "v5");
    assert.equal((await releaseStatus(helm.bin, "app", namespace, env))?.revision, 2);
  });

  Deno.test(`${helm.name}: --lock-order-key refuses a deploy older than the last one with exit 8`, async () => {
    const { namespace, env } = await setup("order-key");
    const ten = await upgrade(namespace, env, "10", ["--lock-order-key", "10"]).output();
    assert.equal(ten.code, 0, ten.stderr);
    const nine = await upgrade(namespace, env, "9", ["--lock-order-key=9"]).output();
    assert.equal(nine.code, ExitCode.Superseded, nine.stderr);
    assert.match(nine.stderr, /outdated/);
    assert.ok(nine.stderr.includes(job(10)), nine.stderr);
    assert.doesNotMatch(nine.stderr, /running helm/);
    assert.equal(await tagOf(helm.bin, namespace, env), "v10");
    const eleven = await upgrade(namespace, env, "11", ["--lock-order-key", "11"]).output();
    assert.equal(eleven.code, 0, eleven.stderr);
    assert.equal(await tagOf(helm.bin, namespace, env), "v11");
    assert.equal((await releaseStatus(helm.bin, "app", namespace, env))?.revision, 3);
  });
}
