/**
 * Unit tests of the deploy queue's tickets (lib/lock/tickets.ts): their order, staleness by the
 * API server's clock, and what a renewed ticket keeps; then the queue driven through takeLock()
 * on a fake clock and a fake API server (more in take_test.ts). Nothing waits for real time.
 */
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { Annotation } from "../../lib/lock/identity.ts";
import { POSITION } from "../../lib/lock/lease.ts";
import { lockName, releaseLabels, stateName, ticketPrefix } from "../../lib/lock/names.ts";
import { RecordAnnotation } from "../../lib/lock/record.ts";
import { isSuperseded } from "../../lib/lock/queue_view.ts";
import { type QueuedLock, takeLock, type TakeOptions } from "../../lib/lock/take.ts";
import {
  heldByNewer,
  isStale,
  orderAnnotations,
  queueOrder,
  readTicket,
  renewedTicket,
  type Ticket,
  ticketBody,
  TicketTimings,
} from "../../lib/lock/tickets.ts";
import { FakeApi, FakeClock, unusedClient } from "../support/fake_api.ts";

const LOCK = lockName("app");
const job = (n: number | string) => `https://gitlab.example/acme/app/-/jobs/${n}`;

/** A ticket as readTicket() makes it, arriving at resourceVersion `position`. */
const t = (position: number, extra: Partial<Ticket> = {}): Ticket => ({
  name: `${ticketPrefix("app")}${position}`,
  position: String(position),
  created: "2026-03-01T12:00:00Z",
  info: { identity: `id-${position}` },
  mode: "fifo",
  lease: {},
  ...extra,
});
const names = (order: Ticket[]) => order.map((x) => Number(x.position));

Deno.test("queueOrder() puts keyless tickets behind the keys that came before them", () => {
  const order = queueOrder([t(1, { key: 10 }), t(2), t(3, { key: 9 }), t(4, { key: 11 })]);
  assert.deepEqual(names(order), [3, 1, 2, 4]);
});

Deno.test("queueOrder() counts keys only when every keyed ticket has the same scope", () => {
  const order = queueOrder([
    t(1, { key: 10, scope: "gitlab:1" }),
    t(2, { key: 5, scope: "gitlab:2" }),
    t(3, { key: 1, scope: "gitlab:1" }),
  ]);
  assert.deepEqual(names(order), [1, 2, 3], "arrival order");
});

Deno.test("queueOrder() compares resourceVersions as numbers, not as text", () => {
  const order = queueOrder([t(100), t(99), t(1000), t(101)]);
  assert.deepEqual(names(order), [99, 100, 101, 1000]);
});

Deno.test("queueOrder() lets newest tickets with any ticket behind them yield, newest first", () => {
  const order = queueOrder([
    t(1),
    t(2, { mode: "newest" }),
    t(3, { mode: "newest" }),
    t(4, { mode: "newest" }),
  ]);
  assert.deepEqual(names(order), [1, 4, 3, 2]);
});

Deno.test("isStale() judges a ticket by the API server's clock, with a margin", () => {
  const writtenAt = Date.parse("2026-03-01T12:00:00Z");
  const ticket = t(1, { writtenAt });
  const limit = TicketTimings.staleMs + TicketTimings.marginMs;
  assert.equal(isStale(ticket, writtenAt + limit), false);
  assert.equal(isStale(ticket, writtenAt + limit + 1), true);
  assert.equal(isStale(ticket, undefined), false, "without the server's clock: alive");
  assert.equal(isStale(t(2), writtenAt + 10 * limit), false, "without a write time: alive");
});

Deno.test("readTicket() reads a ticket's position, order and last write; other Leases are not tickets", () => {
  const created = ticketBody({
    release: "app",
    namespace: "prod",
    identity: "runner-a",
    annotations: { [Annotation.ciJobUrl]: job("a") },
    mode: "fifo",
    key: 7,
    scope: "gitlab:1",
  }, new Date("2026-03-01T12:00:00Z"));
  assert.equal(created.metadata?.generateName, ticketPrefix("app"));
  assert.deepEqual(created.metadata?.labels, releaseLabels("app"));
  const written: V1Lease = {
    ...created,
    metadata: {
      ...created.metadata,
      name: `${ticketPrefix("app")}x7k2p`,
      resourceVersion: "512",
      creationTimestamp: "2026-03-01T12:00:00Z" as never,
      managedFields: [{ time: "2026-03-01T12:00:40Z" as never }],
    },
  };
  const ticket = readTicket(written, "app");
  assert.ok(ticket);
  assert.equal(ticket.position, "512");
  assert.equal(ticket.key, 7);
  assert.equal(ticket.scope, "gitlab:1");
  assert.equal(ticket.info.ciJobUrl, job("a"));
  assert.equal(ticket.writtenAt, Date.parse("2026-03-01T12:00:40Z"));
  // Renewed: a new resourceVersion, the creation one kept as its position.
  const renewed = renewedTicket(written, "512", new Date("2026-03-01T12:01:00Z"));
  assert.equal(renewed.metadata?.annotations?.[POSITION], "512");
  assert.equal(
    readTicket({ ...renewed, metadata: { ...renewed.metadata, resourceVersion: "900" } }, "app")
      ?.position,
    "512",
  );
  assert.equal(readTicket(written, "other"), undefined, "another release's");
  assert.equal(readTicket({ ...written, spec: {} }, "app"), undefined, "without a holder");
  assert.equal(
    readTicket({ metadata: { name: LOCK }, spec: { holderIdentity: "x" } }, "app"),
    undefined,
  );
});

Deno.test("heldByNewer() compares the holder's queue position, or its key in the same scope", () => {
  const lock = (annotations: Record<string, string>): V1Lease => ({ metadata: { annotations } });
  const me = t(500, { mode: "newest" });
  assert.equal(heldByNewer(lock({ [POSITION]: "600" }), me), true);
  assert.equal(heldByNewer(lock({ [POSITION]: "400" }), me), false);
  assert.equal(heldByNewer(lock({}), me), false, "took it without queueing: came first");
  const keyed = t(500, { mode: "newest", key: 10, scope: "s" });
  const holder = (key: number, scope = "s") =>
    lock({
      [POSITION]: "400",
      ...orderAnnotations({ mode: "fifo", key, scope }),
    });
  assert.equal(heldByNewer(holder(11), keyed), true, "a higher key, though it came earlier");
  assert.equal(heldByNewer(holder(9), keyed), false);
  assert.equal(heldByNewer(holder(11, "other"), keyed), false, "another scope: by arrival");
});

function setup() {
  const clock = new FakeClock();
  const api = new FakeApi(clock);
  const options = (name: string, extra: Partial<TakeOptions> = {}): TakeOptions => ({
    client: unusedClient,
    namespace: "prod",
    release: "app",
    identity: `runner-${name}`,
    annotations: { [Annotation.ciJobUrl]: job(name), [Annotation.command]: "upgrade app" },
    timeoutMs: 3_600_000,
    leaseDurationSeconds: 15,
    api,
    timing: clock.timing,
    ...extra,
  });
  const start = (name: string, extra: Partial<TakeOptions> = {}) => {
    const state: { lock?: QueuedLock; error?: unknown; at?: number } = {};
    takeLock(options(name, extra)).then(
      (lock) => Object.assign(state, { lock, at: clock.now() }),
      (error) => Object.assign(state, { error, at: clock.now() }),
    );
    return state;
  };
  const tickets = () => [...api.leases.keys()].filter((n) => n.startsWith(ticketPrefix("app")));
  return { clock, api, start, tickets };
}

/** A ticket whose job died right after writing it: never renewed. */
function deadTicket(api: FakeApi, name: string): string {
  const ticket = `${ticketPrefix("app")}${name}`;
  api.put(ticket, {
    metadata: {
      labels: releaseLabels("app"),
      annotations: { [Annotation.ciJobUrl]: job(name), ...orderAnnotations({ mode: "fifo" }) },
    },
    spec: { holderIdentity: `runner-${name}`, leaseDurationSeconds: 60 },
  });
  return ticket;
}

Deno.test("takeLock() deletes a ticket the API server has not seen written for a minute, while live waiters renew theirs", async () => {
  const { clock, api, start, tickets } = setup();
  const holder = start("h");
  await clock.flush();
  const dead = deadTicket(api, "dead");
  const live = start("live");
  await clock.advance(1_000);
  assert.equal(tickets().length, 2);
  await clock.advance(60_000);
  assert.ok(api.leases.has(dead), "not before a minute and the margin");
  await clock.advance(3_000);
  assert.equal(api.leases.has(dead), false);
  assert.equal(tickets().length, 1, "the live waiter renewed its own all along");
  // Now first in line: it takes the lock the moment it is released.
  await holder.lock!.release();
  await clock.flush();
  assert.ok(live.lock, String(live.error));
  await live.lock.release();
  assert.deepEqual([...api.leases.keys()], [], "nothing left");
});

Deno.test("takeLock() judges tickets by the API server's clock, however far off ours is", async () => {
  for (const skewMs of [-3_600_000, 3_600_000]) {
    const { clock, api, start, tickets } = setup();
    api.skewMs = skewMs;
    const holder = start("h");
    await clock.flush();
    const first = start("1");
    await clock.flush();
    const second = start("2");
    await clock.advance(5 * 60_000);
    assert.equal(tickets().length, 2, `skew ${skewMs}: no live ticket was taken for dead`);
    await holder.lock!.release();
    await clock.flush();
    assert.ok(first.lock, String(first.error));
    assert.equal(Boolean(second.lock), false);
    await first.lock.release();
    await clock.flush();
    assert.ok(second.lock, String(second.error));
    await second.lock.release();
  }
});

Deno.test("takeLock() keeps a renewed ticket's place ahead of later ones", async () => {
  const { clock, api, start } = setup();
  const holder = start("h");
  await clock.flush();
  const first = start("1");
  await clock.advance(45_000); // Its ticket renewed twice: new resourceVersions.
  const ticket = api.leases.get(
    [...api.leases.keys()].find((n) => n.startsWith(ticketPrefix("app")))!,
  )!;
  assert.ok(
    Number(ticket.metadata?.resourceVersion) > Number(ticket.metadata?.annotations?.[POSITION]),
  );
  const later = start("2");
  await clock.advance(1_000);
  await holder.lock!.release();
  await clock.flush();
  assert.ok(first.lock, String(first.error));
  assert.equal(Boolean(later.lock), false);
  await first.lock.release();
  await clock.flush();
  assert.ok(later.lock, String(later.error));
  await later.lock.release();
});

Deno.test("takeLock() newest: of four waiters only the newest runs, the others superseded naming it", async () => {
  const { clock, start } = setup();
  const holder = start("h");
  await clock.flush();
  const waiters = [];
  for (const n of ["2", "3", "4", "5"]) {
    waiters.push(start(n, { order: { mode: "newest" } }));
    await clock.advance(200);
  }
  assert.ok(waiters.every((w) => !w.lock && !w.error));
  await holder.lock!.release();
  await clock.flush();
  const newest = waiters.at(-1)!;
  assert.ok(newest.lock, String(newest.error));
  for (const w of waiters.slice(0, -1)) {
    assert.equal(Boolean(w.lock), false);
    assert.ok(w.error instanceof HelmLockError, String(w.error));
    assert.equal(w.error.code, ExitCode.Superseded);
    assert.ok(isSuperseded(w.error));
    assert.ok(w.error.message.includes(job("5")), w.error.message);
  }
  await newest.lock.release();
});

Deno.test("takeLock() refuses an order key lower than the last deploy's, naming that deploy", async () => {
  const { clock, api, start, tickets } = setup();
  const key = (n: number) => ({ order: { mode: "fifo" as const, key: n, scope: "order-key" } });
  const ten = start("10", { ...key(10), refuseOutdated: true });
  await clock.flush();
  await ten.lock!.recordDeploy();
  await ten.lock!.release();
  const record = api.leases.get(stateName("app"))?.metadata?.annotations ?? {};
  assert.equal(record[RecordAnnotation.deployedKey], "10");
  const nine = start("9", { ...key(9), refuseOutdated: true });
  await clock.flush();
  assert.ok(nine.error instanceof HelmLockError, String(nine.error));
  assert.equal(nine.error.code, ExitCode.Superseded);
  assert.equal(isSuperseded(nine.error), false, "outdated, not superseded");
  assert.match(nine.error.message, /order key 9 is outdated: expected at least 10/);
  assert.ok(nine.error.message.includes(job("10")), nine.error.message);
  assert.deepEqual(tickets(), []);
  assert.equal(api.leases.has(LOCK), false);
  const eleven = start("11", { ...key(11), refuseOutdated: true });
  await clock.flush();
  assert.ok(eleven.lock, String(eleven.error));
  await eleven.lock.release();
});

Deno.test("takeLock() orders keyed waiters by key, and refuses one outdated while it waited", async () => {
  const { clock, start, tickets } = setup();
  const key = (n: number) => ({
    order: { mode: "fifo" as const, key: n, scope: "order-key" },
    refuseOutdated: true,
  });
  const holder = start("h");
  await clock.flush();
  const twelve = start("12", key(12));
  await clock.advance(200);
  const eleven = start("11", key(11));
  await clock.advance(200);
  await holder.lock!.release();
  await clock.flush();
  assert.ok(eleven.lock, "key 11 goes first, though it came later");
  assert.equal(Boolean(twelve.lock), false);
  await eleven.lock.release();
  await clock.flush();
  assert.ok(twelve.lock, String(twelve.error));
  // Another key-11 job queues behind 12 and is waiting when 12's deploy is recorded.
  const late = start("11b", key(11));
  await clock.advance(1_000);
  assert.ok(!late.lock && !late.error, "waiting");
  await twelve.lock.recordDeploy();
  await clock.flush();
  assert.ok(late.error instanceof HelmLockError, String(late.error));
  assert.match(late.error.message, /order key 11 is outdated: expected at least 12/);
  assert.deepEqual(tickets(), [], "its ticket is gone");
  await twelve.lock.release();
});
