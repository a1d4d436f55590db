/**
 * A holder keeps its lock through API server stalls just short of its renew deadline (issue
 * 9), end to end on a control plane of its own (tests/support/fault_plane.ts): a real
 * helm-lock lock process, the API server SIGSTOPped and continued 20 times.
 */
import assert from "node:assert/strict";
import { holdTimings } from "../../lib/lock/lease.ts";
import {
  faultLease,
  faultNamespace,
  freezeApiserver,
  stopFaultPlane,
  whileFaultHolding,
} from "../support/fault_plane.ts";

const opts = { sanitizeResources: false, sanitizeOps: false } as const;

Deno.test({
  name:
    "a holder survives 20 API server stalls of renew deadline minus retry period (minus 300 ms) starting 10-50 ms before a renewal",
  ...opts,
  async fn() {
    // Scaled: a 3 s lease has a 2 s renew deadline and a 400 ms retry period, so the rule's
    // stall is 1.6 s; 300 ms of it is left for the API server to answer after SIGCONT.
    const t = holdTimings(3);
    const stallMs = t.renewDeadlineMs - t.retryPeriodMs - 300;
    const namespace = await faultNamespace("stall");
    await whileFaultHolding(namespace, 3, async (holder) => {
      for (let i = 0; i < 20; i++) {
        // The next renewal is sent a retry period after the last one was answered.
        let start = NaN;
        for (const until = Date.now() + 10_000;;) {
          const lease = await faultLease(namespace, "helm-lock-app");
          const renewed = new Date(String(lease.spec?.renewTime)).getTime();
          start = renewed + t.retryPeriodMs + 5 - (10 + Math.random() * 40);
          if (start - Date.now() > 5) break;
          if (Date.now() > until) {
            throw new Error(`No renewal of the lock Lease within 10 s before stall ${i + 1}`);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        await new Promise((r) => setTimeout(r, start - Date.now()));
        await freezeApiserver(stallMs);
        assert.deepEqual(holder.events.filter((e) => e.event === "lost"), [], `stall ${i + 1}`);
      }
      // A loss at the last stall's deadline would show by now.
      await new Promise((r) => setTimeout(r, t.renewDeadlineMs));
      assert.deepEqual(holder.events.filter((e) => e.event === "lost"), []);
      const lease = await faultLease(namespace, "helm-lock-app");
      assert.ok(lease.spec?.holderIdentity, "still held");
    });
  },
});

Deno.test.afterAll(stopFaultPlane);
