/** lease_info.ts's queue for lock-status, from tickets on the fake API server. */
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import { readQueue } from "../../lib/lock/lease_info.ts";
import { QUEUE_LABEL, QueueAnnotation, ticketLeaseName } from "../../lib/lock/queue.ts";
import type { KubeClient } from "../../lib/kube/rest.ts";
import { FakeLeases } from "../support/fake_leases.ts";

function ticket(n: number, state: string, renewTime: string, extra: V1Lease["spec"] = {}): V1Lease {
  return {
    metadata: {
      labels: { [QUEUE_LABEL]: "app" },
      annotations: { [QueueAnnotation.ticket]: String(n), [QueueAnnotation.state]: state },
    },
    spec: {
      holderIdentity: `job-${n}`,
      leaseDurationSeconds: 60,
      acquireTime: new Date("2026-05-04T09:00:00Z"),
      renewTime: new Date(renewTime),
      ...extra,
    },
  };
}

Deno.test("readQueue() lists the waiting tickets in order with their last renewal", async () => {
  const api = new FakeLeases();
  api.put(ticketLeaseName("app", 3), ticket(3, "waiting", "2026-05-04T09:05:00Z"));
  api.put(ticketLeaseName("app", 1), ticket(1, "holding", "2026-05-04T09:05:00Z"));
  api.put(ticketLeaseName("app", 2), ticket(2, "waiting", "2026-05-04T09:01:00Z", {}));
  api.put(ticketLeaseName("other", 4), {
    ...ticket(4, "waiting", "2026-05-04T09:05:00Z"),
    metadata: {
      labels: { [QUEUE_LABEL]: "other" },
      annotations: { [QueueAnnotation.ticket]: "4" },
    },
  });
  const queue = await readQueue(undefined as unknown as KubeClient, "ns", "app", api);
  assert.deepEqual(queue.map((q) => [q.identity, q.renewTime, q.leaseDurationSeconds]), [
    ["job-2", "2026-05-04T09:01:00.000Z", 60],
    ["job-3", "2026-05-04T09:05:00.000Z", 60],
  ]);
});
