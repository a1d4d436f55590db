import assert from "node:assert/strict";
import { deadline, delay, retry, RetryError, schedule } from "../../lib/async.ts";

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

Deno.test("schedule() calls the function once when the time is up", async () => {
  let calls = 0;
  const fired = Promise.withResolvers<void>();
  schedule(1, () => {
    calls++;
    fired.resolve();
  });
  assert.equal(calls, 0);
  await fired.promise;
  await delay(5);
  assert.equal(calls, 1);
});

Deno.test("schedule()'s cancel stops the call, and is harmless once it ran", async () => {
  let calls = 0;
  const cancel = schedule(1, () => calls++);
  cancel();
  await delay(20);
  assert.equal(calls, 0);
  const ran = Promise.withResolvers<void>();
  const late = schedule(0, () => ran.resolve());
  await ran.promise;
  late();
});

Deno.test("schedule() takes NaN as 0, and waits past 2^31 - 1 ms or Infinity at most that long", async () => {
  const ran = Promise.withResolvers<void>();
  schedule(NaN, () => ran.resolve());
  await ran.promise;
  const fired: number[] = [];
  const cancels = [2 ** 31, 2 ** 40, Infinity].map((ms) => schedule(ms, () => fired.push(ms)));
  // The runtime's own timers fire such waits at once.
  await delay(50);
  for (const cancel of cancels) cancel();
  assert.deepEqual(fired, []);
});

Deno.test("a pending schedule() keeps the process alive, a cancelled one does not", async () => {
  const url = new URL("../../lib/async.ts", import.meta.url).href;
  const run = async (script: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", `import { schedule } from "${url}"; ${script}`],
      stdout: "piped",
      stderr: "piped",
      // A cancelled timer that kept the process alive would hold it for 60 s: killed at 20 s.
      signal: AbortSignal.timeout(20_000),
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  // The process would end before 300 ms without the pending timer, and print nothing.
  assert.equal(await run(`schedule(300, () => console.log("fired"));`), "fired");
  // Cancelled: the process ends at once, not after 60 s (killed at 20 s, printing nothing).
  assert.equal(
    await run(`schedule(60_000, () => console.log("fired"))(); console.log("done");`),
    "done",
  );
});

Deno.test("deadline() returns the value of a promise that settles in time", async () => {
  assert.equal(await deadline(Promise.resolve(42), 60_000), 42);
});

Deno.test("deadline() rejects with a TimeoutError when the time runs out", async () => {
  const never = new Promise<never>(() => {});
  await assert.rejects(deadline(never, 1), (err) => {
    return err instanceof DOMException && err.name === "TimeoutError";
  });
});

Deno.test("deadline() rejects with the signal's reason when aborted", async () => {
  const controller = new AbortController();
  const p = deadline(new Promise<never>(() => {}), 60_000, { signal: controller.signal });
  controller.abort(new Error("cancelled"));
  await assert.rejects(p, { message: "cancelled" });
});

Deno.test("deadline() passes the promise's own rejection through", async () => {
  await assert.rejects(deadline(Promise.reject(new Error("boom")), 60_000), { message: "boom" });
});

Deno.test("retry() returns the first success", async () => {
  let calls = 0;
  const value = await retry(() => {
    calls++;
    if (calls < 3) throw new Error(`fail ${calls}`);
    return "ok";
  }, { minTimeout: 0 });
  assert.equal(value, "ok");
  assert.equal(calls, 3);
});

Deno.test("retry() fails after five errors by default", async () => {
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      throw new Error(`fail ${calls}`);
    }, { minTimeout: 0 }),
    (err) => {
      assert.ok(err instanceof RetryError);
      assert.equal((err.cause as Error).message, "fail 5");
      return true;
    },
  );
  assert.equal(calls, 5);
});

Deno.test("retry() rethrows at once an error that is not retriable", async () => {
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      throw new TypeError("bad input");
    }, { minTimeout: 0, isRetriable: (err) => !(err instanceof TypeError) }),
    TypeError,
  );
  assert.equal(calls, 1);
});

Deno.test("retry() stops with the signal's reason when aborted", async () => {
  const controller = new AbortController();
  let calls = 0;
  const p = retry(() => {
    calls++;
    controller.abort(new Error("user cancelled"));
    throw new Error("fail");
  }, { minTimeout: 60_000, maxTimeout: 60_000, signal: controller.signal });
  await assert.rejects(p, { message: "user cancelled" });
  assert.equal(calls, 1);
});

Deno.test("retry() rejects 'maxAttempts' of 0", async () => {
  await assert.rejects(retry(() => 1, { maxAttempts: 0 }), {
    name: "RangeError",
    message: "Cannot retry as 'maxAttempts' must be a positive integer: current value is 0",
  });
});

Deno.test("retry() rejects a 'jitter' above 1", async () => {
  await assert.rejects(retry(() => 1, { jitter: 2 }), RangeError);
});
