import assert from "node:assert/strict";
import { LockProcess } from "./cli.ts";

// A usage error: helm-lock prints one line and exits 2 without reaching helm or a cluster.
const usageError = () => new LockProcess(["upgrade"], {});

Deno.test("LockProcess.waitForLine() rejects a line that never came, also when asked after the end", async () => {
  const proc = usageError();
  const before = proc.waitForLine(/acquired lock/);
  await assert.rejects(before, /helm-lock ended without a line matching \/acquired lock\//);
  assert.equal((await proc.output()).code, 2);
  await assert.rejects(
    proc.waitForLine(/released lock/),
    /helm-lock ended without a line matching \/released lock\/; its last:\n.*release name is missing/,
  );
});

Deno.test("LockProcess.waitForLine() resolves for a line that came, also when asked after the end", async () => {
  const proc = usageError();
  const before = await proc.waitForLine(/release name is missing/);
  await proc.output();
  assert.equal(await proc.waitForLine(/release name is missing/), before);
});
