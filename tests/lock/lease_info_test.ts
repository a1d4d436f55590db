/**
 * status.ts's view of a release for lock-status (readLeases, lockInfo), from the Leases on the
 * fake API server: the holder, the queue in order with dead jobs judged by the server's clock,
 * and the deploy record.
 */
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import { Annotation } from "../../lib/lock/identity.ts";
import { lockName, releaseLabels, stateName, ticketPrefix } from "../../lib/lock/names.ts";
import { RecordAnnotation } from "../../lib/lock/record.ts";
import { lockInfo, readLeases } from "../../lib/lock/status.ts";
import { orderAnnotations } from "../../lib/lock/tickets.ts";
import { FakeApi, FakeClock, unusedClient } from "../support/fake_api.ts";

function ticket(release: string, n: number, key?: number): V1Lease {
  return {
    metadata: {
      labels: releaseLabels(release),
      annotations: {
        [Annotation.ciJobUrl]: `https://ci.example/jobs/${n}`,
        ...orderAnnotations({ mode: "fifo", ...(key === undefined ? {} : { key }) }),
      },
    },
    spec: {
      holderIdentity: `job-${n}`,
      leaseDurationSeconds: 60,
      acquireTime: "2026-03-01T12:00:00.000000Z" as never,
    },
  };
}

Deno.test("readLeases() and lockInfo() list the queue in order, dead jobs judged by the server's clock", async () => {
  const clock = new FakeClock();
  const api = new FakeApi(clock);
  api.skewMs = -86_400_000; // A server a day behind us: only its own clock counts.
  api.put(lockName("app"), {
    metadata: {
      labels: releaseLabels("app"),
      annotations: {
        [Annotation.ciJobUrl]: "https://ci.example/jobs/0",
        [Annotation.startedAt]: "2026-03-01T11:59:00.000Z",
      },
    },
    spec: { holderIdentity: "job-0", leaseDurationSeconds: 15, renewTime: clock.date() as never },
  });
  api.put(`${ticketPrefix("app")}aaaaa`, ticket("app", 1)); // written first, never renewed
  await clock.advance(30_000);
  api.put(`${ticketPrefix("app")}bbbbb`, ticket("app", 2));
  api.put(`${ticketPrefix("app")}ccccc`, ticket("app", 3));
  api.put(`${ticketPrefix("other")}ddddd`, ticket("other", 4));
  await clock.advance(35_000);
  const leases = await readLeases(unusedClient, "prod", "app", api);
  const info = lockInfo(leases);
  assert.equal(info.state, "held");
  assert.equal(info.holder, "job-0");
  assert.equal(info.ciJobUrl, "https://ci.example/jobs/0");
  assert.equal(info.since, "2026-03-01T11:59:00.000Z");
  // Written 65 s and 35 s ago by the server's clock: only the first is past a minute.
  assert.deepEqual(
    info.queue.map((q) => [q.place, q.ticket, q.identity, q.looksDead]),
    [
      [1, `${ticketPrefix("app")}aaaaa`, "job-1", true],
      [2, `${ticketPrefix("app")}bbbbb`, "job-2", false],
      [3, `${ticketPrefix("app")}ccccc`, "job-3", false],
    ],
  );
  assert.equal(info.queue[1]?.ciJobUrl, "https://ci.example/jobs/2");
  assert.equal(info.queue[1]?.since, "2026-03-01T12:00:00.000Z");
  // 30 s later the other two are 65 s old too.
  await clock.advance(30_000);
  const later = lockInfo(await readLeases(unusedClient, "prod", "app", api));
  assert.deepEqual(later.queue.map((q) => q.looksDead), [true, true, true]);
});

Deno.test("lockInfo() orders keyed tickets by key and reads the deploy record", async () => {
  const clock = new FakeClock();
  const api = new FakeApi(clock);
  api.put(`${ticketPrefix("app")}aaaaa`, ticket("app", 1, 12));
  api.put(`${ticketPrefix("app")}bbbbb`, ticket("app", 2, 11));
  api.put(stateName("app"), {
    metadata: {
      labels: releaseLabels("app"),
      annotations: {
        [RecordAnnotation.deployedKey]: "10",
        [RecordAnnotation.deployedBy]: "CI job https://ci.example/jobs/0",
      },
    },
    spec: {},
  });
  const info = lockInfo(await readLeases(unusedClient, "prod", "app", api));
  assert.equal(info.state, "none", "a queue and a record, no lock");
  assert.equal(info.holder, undefined);
  assert.deepEqual(info.queue.map((q) => q.identity), ["job-2", "job-1"]);
  assert.deepEqual(info.record, {
    lease: stateName("app"),
    deployedOrderKey: 10,
    deployedBy: "CI job https://ci.example/jobs/0",
  });
});

Deno.test("readLeases() finds by name the lock of a helm-lock older than the release label", async () => {
  const clock = new FakeClock();
  const api = new FakeApi(clock);
  api.put(lockName("app"), {
    metadata: { labels: { "app.kubernetes.io/managed-by": "helm-lock" } },
    spec: { holderIdentity: "old-build", leaseDurationSeconds: 15 },
  });
  const info = lockInfo(await readLeases(unusedClient, "prod", "app", api));
  assert.equal(info.state, "held");
  assert.equal(info.holder, "old-build");
  assert.deepEqual(info.queue, []);
  assert.equal(api.calls.get, 1, "looked up by name after the list by label");
});
