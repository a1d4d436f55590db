/**
 * The queue's tickets and their order (docs/design.md §2 "The queue"). Pure: no requests.
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { MicroTime } from "../kube/micro_time.ts";
import { compareVersions } from "./cache.ts";
import { bounded, type HolderInfo, holderInfo, POSITION, writtenAt } from "./lease.ts";
import { isTicketName, PREFIX, releaseLabels, ticketPrefix } from "./names.ts";

/** `--lock-queue`: who gets the lock when it frees. */
export type QueueMode = "fifo" | "newest";

/** A ticket's annotations (also the holder's). */
const QueueAnnotation = {
  mode: `${PREFIX}queue`,
  orderKey: `${PREFIX}order-key`,
  orderScope: `${PREFIX}order-scope`,
  position: POSITION,
} as const;

/** `marginMs`: the server's clock is read from whole-second headers and fields. */
export const TicketTimings = { renewMs: 20_000, staleMs: 60_000, marginMs: 2_000 } as const;

export interface Order {
  mode: QueueMode;
  key?: number;
  /** `order-key`, or a CI series: keys of different scopes are not compared. */
  scope?: string;
}

export interface Ticket extends Order {
  name: string;
  /** The creation resourceVersion (the arrival order). */
  position: string;
  /** For ordering when resourceVersions are not integers. */
  created: string;
  info: HolderInfo;
  /** When the API server last saw it written, by its own clock (epoch ms). */
  writtenAt?: number;
  lease: V1Lease;
}

export function int(value: string | undefined): number | undefined {
  if (value === undefined || !/^-?\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function orderAnnotations(order: Order): Record<string, string> {
  return {
    [QueueAnnotation.mode]: order.mode,
    ...(order.key === undefined ? {} : { [QueueAnnotation.orderKey]: String(order.key) }),
    ...(order.scope === undefined ? {} : { [QueueAnnotation.orderScope]: order.scope }),
  };
}

function readOrder(lease: V1Lease): Order {
  const a = lease.metadata?.annotations ?? {};
  const key = int(a[QueueAnnotation.orderKey]);
  const scope = bounded(a[QueueAnnotation.orderScope], 128);
  return {
    mode: a[QueueAnnotation.mode] === "newest" ? "newest" : "fifo",
    ...(key === undefined ? {} : { key }),
    ...(scope === undefined ? {} : { scope }),
  };
}

/** Reads a ticket of `release`; `undefined` when the Lease is not one. */
export function readTicket(lease: V1Lease, release: string): Ticket | undefined {
  const name = lease.metadata?.name ?? "";
  if (!isTicketName(name, release) || !lease.spec?.holderIdentity) return undefined;
  const noted = lease.metadata?.annotations?.[QueueAnnotation.position];
  const position = noted && /^[1-9][0-9]{0,19}$/.test(noted)
    ? noted
    : lease.metadata?.resourceVersion ?? "";
  const written = writtenAt(lease);
  return {
    name,
    position,
    created: String(lease.metadata?.creationTimestamp ?? ""),
    info: holderInfo(lease),
    ...readOrder(lease),
    ...(written === undefined ? {} : { writtenAt: written }),
    lease,
  };
}

/** Whether the API server (its clock: `serverNow`) has not seen `ticket` written for a lifetime. */
export function isStale(ticket: { writtenAt?: number | undefined }, serverNow?: number): boolean {
  if (serverNow === undefined || ticket.writtenAt === undefined) return false;
  return serverNow - ticket.writtenAt > TicketTimings.staleMs + TicketTimings.marginMs;
}

function arrival(a: Ticket, b: Ticket): number {
  return compareVersions(a.position, b.position) ?? (a.created.localeCompare(b.created) ||
    a.name.localeCompare(b.name));
}

/** Sort keys: [order key, arrival rank], keys counted only when all share one scope. */
function sortKeys(tickets: readonly Ticket[]): Map<Ticket, [number, number]> {
  const byArrival = [...tickets].sort(arrival);
  const scopes = new Set(byArrival.filter((t) => t.key !== undefined).map((t) => t.scope ?? ""));
  const keyed = scopes.size === 1;
  const keys = new Map<Ticket, [number, number]>();
  let highest = -Infinity;
  byArrival.forEach((t, i) => {
    if (keyed && t.key !== undefined) highest = Math.max(highest, t.key);
    keys.set(t, [keyed ? t.key ?? highest : 0, i]);
  });
  return keys;
}

const before = (a: [number, number], b: [number, number]) => a[0] - b[0] || a[1] - b[1];

/** The tickets in the order they may take the lock (docs/design.md §2 "The queue"). */
export function queueOrder(tickets: readonly Ticket[]): Ticket[] {
  const keys = sortKeys(tickets);
  const sorted = [...tickets].sort((a, b) => before(keys.get(a)!, keys.get(b)!));
  const yields = (t: Ticket, i: number) => t.mode === "newest" && i < sorted.length - 1;
  return [
    ...sorted.filter((t, i) => !yields(t, i)),
    ...sorted.filter((t, i) => yields(t, i)).reverse(),
  ];
}

/**
 * Whether the holder of `lock` came after `me`: a higher key, else a later position. One that
 * took the lock without queueing found the queue empty, so came before every ticket.
 */
export function heldByNewer(lock: V1Lease, me: Ticket): boolean {
  const position = lock.metadata?.annotations?.[QueueAnnotation.position];
  if (!position) return false;
  const holder = readOrder(lock);
  if (
    holder.key !== undefined && me.key !== undefined && (holder.scope ?? "") === (me.scope ?? "")
  ) {
    if (holder.key !== me.key) return holder.key > me.key;
  }
  return (compareVersions(position, me.position) ?? 0) > 0;
}

export function ticketBody(
  spec: Order & {
    release: string;
    namespace: string;
    identity: string;
    annotations: Record<string, string>;
  },
  now: Date,
): V1Lease {
  const time = new MicroTime(now.getTime());
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      generateName: ticketPrefix(spec.release),
      namespace: spec.namespace,
      labels: releaseLabels(spec.release),
      annotations: { ...spec.annotations, ...orderAnnotations(spec) },
    },
    spec: {
      holderIdentity: spec.identity,
      leaseDurationSeconds: TicketTimings.staleMs / 1000,
      acquireTime: time,
      renewTime: time,
    },
  };
}

/** Our ticket renewed, its creation resourceVersion kept as its position. */
export function renewedTicket(lease: V1Lease, position: string, now: Date): V1Lease {
  const { managedFields: _m, ...meta } = lease.metadata ?? {};
  return {
    ...lease,
    metadata: {
      ...meta,
      annotations: { ...meta.annotations, [QueueAnnotation.position]: position },
    },
    spec: { ...lease.spec, renewTime: new MicroTime(now.getTime()) },
  };
}
