import assert from "node:assert/strict";
import { startedByHelm, watchParent } from "../../lib/helm/parent.ts";

Deno.test("startedByHelm() is true only with both of helm's plugin variables", () => {
  assert.equal(startedByHelm({ HELM_PLUGIN_NAME: "lock", HELM_PLUGIN_DIR: "/p" }), true);
  assert.equal(startedByHelm({ HELM_PLUGIN_NAME: "lock" }), false);
  assert.equal(startedByHelm({}), false);
});

/** Counts calls; `reach()` waits for a count, failing after `ms` with what it waited for. */
class Counter {
  count = 0;
  readonly #waiters = new Set<{ n: number; wake: () => void }>();

  bump(): void {
    this.count++;
    for (const w of this.#waiters) if (this.count >= w.n) w.wake();
  }

  async reach(n: number, what: string, ms = 5_000): Promise<void> {
    if (this.count >= n) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waiter = { n, wake: () => {} };
    try {
      await new Promise<void>((resolve, reject) => {
        waiter.wake = resolve;
        this.#waiters.add(waiter);
        timer = setTimeout(
          () => reject(new Error(`No ${what} within ${ms} ms (${this.count} of ${n} calls)`)),
          ms,
        );
      });
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(waiter);
    }
  }
}

/**
 * A second watch, whose parent never changes, as a clock counted in polls: started after the
 * watch under test, with the same period, each of its polls comes after that watch's poll of
 * the same round. So once it has polled twice more, the watch under test had its next poll.
 */
function pollClock() {
  const polls = new Counter();
  const stop = watchParent(() => {}, () => (polls.bump(), 100));
  return {
    stop,
    twoMorePolls: () => polls.reach(polls.count + 2, "two more polls of a second watch"),
  };
}

Deno.test("watchParent() calls onGone once, with the old parent, when the parent changes", async () => {
  let ppid = 100;
  const polls = new Counter(); // ppid()'s first call reads the parent, each later one is a poll
  const gone: number[] = [];
  const goneCalls = new Counter();
  const stop = watchParent((pid) => (gone.push(pid), goneCalls.bump()), () => {
    polls.bump();
    return ppid;
  });
  const clock = pollClock();
  try {
    await polls.reach(2, "first poll of the parent");
    assert.deepEqual(gone, []);
    ppid = 1;
    await goneCalls.reach(1, "onGone call after the parent changed");
    const polled = polls.count;
    await clock.twoMorePolls();
    assert.deepEqual(gone, [100]);
    assert.equal(polls.count, polled, "the watch polled again after onGone");
  } finally {
    stop();
    clock.stop();
  }
});

Deno.test("watchParent()'s stop function ends the watch", async () => {
  let ppid = 100;
  const polls = new Counter();
  const gone: number[] = [];
  const stop = watchParent((pid) => gone.push(pid), () => (polls.bump(), ppid));
  stop();
  ppid = 1;
  const clock = pollClock();
  try {
    await clock.twoMorePolls();
    assert.deepEqual(gone, []);
    assert.equal(polls.count, 1, "the stopped watch polled the parent");
  } finally {
    clock.stop();
  }
});
