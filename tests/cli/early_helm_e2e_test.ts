/**
 * helm started while the lock is taken (lib/cli/early_helm.ts), with real Helm 3 and 4 on
 * the real control plane: its requests wait at the fence's gate while a stuck release is
 * recovered, it is stopped unheard when the lock is taken by another job, and a helm that
 * fails on its own before the lock is ready ends the run at once.
 */
import assert from "node:assert/strict";
import { createNamespace, helmEnv, helms } from "../support/cluster.ts";
import { killWhen, run } from "../support/helm.ts";
import { helmLock, LockProcess } from "../support/cli.ts";

const SHAPES = "tests/fixtures/shapes";
const FAST = "tests/fixtures/fast";
const SLOW = "tests/fixtures/slow";
/** Holds the lock about 2 s: --wait on a Deployment that never gets ready, then helm fails. */
const HOLD = ["upgrade", "app", SLOW, "--wait", "--timeout", "2s"];

async function history(bin: string, namespace: string, env: Record<string, string>) {
  const out = await run(bin, ["history", "app", "-n", namespace, "-o", "json"], env);
  return (JSON.parse(out.stdout) as Array<{ revision: number; status: string }>)
    .map((r) => `${r.revision}:${r.status}`);
}

for (const { name, bin } of helms) {
  Deno.test(`${name}: an early helm's requests wait at the gate while the release is recovered`, async () => {
    const env = { ...await helmEnv(), HELM_BIN: bin };
    const namespace = await createNamespace(`early-recover-${name}`);
    const helm = async (...args: string[]) =>
      (await run(bin, [...args, "-n", namespace], env)).code;
    assert.equal(await helm("install", "app", SHAPES, "--set", "hangAt=pre-rollback"), 0);
    assert.equal(await helm("upgrade", "app", SHAPES, "--set", "tag=v2"), 0);
    await killWhen(bin, ["rollback", "app", "1"], env, "app", namespace, "pending-rollback");

    const out = await helmLock(
      ["upgrade", "app", SHAPES, "-n", namespace, "--set", "tag=v9", "--debug"],
      env,
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /started helm \(pid \d+\) early: its requests wait for the lock/);
    // helm connected while `helm rollback` recovered the release, and waited: had a byte of
    // it passed, its upgrade would have met the pending rollback ("another operation").
    assert.match(
      out.stderr,
      /fence: forwarded \d+ bytes on \d+ connections, \d+ of them held at the gate/,
    );
    assert.match(out.stderr, /rolled back release "app" in namespace "[^"]+" to revision 2$/m);
    assert.deepEqual(await history(bin, namespace, env), [
      "1:superseded",
      "2:superseded",
      "3:pending-rollback",
      "4:superseded",
      "5:deployed",
    ]);
  });
}

/** Release `app` installed with helm 3, and another job holding its lock (about 2 s). */
async function heldByAnother(prefix: string) {
  const { bin } = helms[0]!;
  const env = { ...await helmEnv(), HELM_BIN: bin };
  const namespace = await createNamespace(prefix);
  assert.equal((await run(bin, ["install", "app", FAST, "-n", namespace], env)).code, 0);
  const holder = new LockProcess([...HOLD, "-n", namespace], env);
  await holder.waitForLine(/running helm/);
  return { bin, env, namespace, holder };
}

Deno.test("an early helm is stopped unheard when another job holds the lock, and helm runs once after it", async () => {
  const { bin, env, namespace, holder } = await heldByAnother("early-contended");
  const waiter = new LockProcess(
    ["upgrade", "app", FAST, "-n", namespace, "--set", "tag=v2", "--debug"],
    env,
  );
  const stopped = await waiter.waitForLine(
    /stopping the early helm \(pid \d+\), which sent nothing/,
  );
  assert.notEqual((await holder.output()).code, 0, "the holder's --wait timed out");
  const out = await waiter.output();
  assert.equal(out.code, 0, out.stderr);
  assert.ok(stopped < holder.lineAt(/released lock/)!, "stopped while the other job held it");
  assert.equal(out.stderr.match(/^helm-lock: running helm /gm)?.length, 1, out.stderr);
  // The stopped helm wrote nothing: one revision each for the holder and the waiter.
  assert.deepEqual(await history(bin, namespace, env), [
    "1:superseded",
    "2:failed",
    "3:deployed",
  ]);
});

Deno.test("a helm that exits on its own before the lock is ready ends the run at once, without the lock", async () => {
  const { env, namespace, holder } = await heldByAnother("early-exit");
  // /bin/false is a program, not a script: started early, it fails before any request.
  const out = await helmLock(["upgrade", "app", FAST, "-n", namespace], {
    ...env,
    HELM_BIN: "/bin/false",
  });
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /helm exited with code 1 before it reached the API server/);
  assert.equal(holder.lineAt(/released lock/), undefined, "it did not wait for the holder");
  await holder.output();
});
