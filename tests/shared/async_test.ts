import assert from "node:assert/strict";
import { delay } from "../../lib/async.ts";

Deno.test("delay() resolves after the timer fires", async () => {
  let done = false;
  const p = delay(1).then(() => done = true);
  assert.equal(done, false);
  await p;
  assert.equal(done, true);
});

Deno.test("delay() rejects with the signal's reason when aborted", async () => {
  const controller = new AbortController();
  const p = delay(60_000, { signal: controller.signal });
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(p, (err) => err === reason);
});

Deno.test("delay() rejects at once when the signal is already aborted", async () => {
  await assert.rejects(delay(60_000, { signal: AbortSignal.abort("gone") }), (err) => {
    return err === "gone";
  });
});

Deno.test("delay() waits past 2^31 - 1 ms at most that long, never firing at once", async () => {
  // The runtime's own timers fire such waits at once.
  const controller = new AbortController();
  const fired: number[] = [];
  const waits = [2 ** 31, 2 ** 40, Infinity].map((ms) =>
    delay(ms, { signal: controller.signal }).then(() => fired.push(ms), () => {})
  );
  await delay(50);
  controller.abort(new Error("done"));
  await Promise.all(waits);
  assert.deepEqual(fired, []);
});
