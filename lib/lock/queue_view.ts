/**
 * What a waiting job makes of its release's Leases at one moment, what it reports and the errors
 * it ends with. Pure: every time is the caller's (local monotonic ms, or the server's for tickets).
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { type HolderInfo, holderInfo, leaseMs } from "./lease.ts";
import {
  heldByNewer,
  isStale,
  type QueueMode,
  queueOrder,
  type Ticket,
  TicketTimings,
} from "./tickets.ts";

/** The head seen not taking a free lock, and since when (local ms). */
export interface StuckHead {
  name: string;
  since: number;
}

/** What the waiter knows at `now` (see `take.ts` for each field's source). */
interface QueueState {
  now: number;
  lock: V1Lease | undefined;
  /** The release's tickets, dead ones included. */
  tickets: readonly Ticket[];
  /** Our ticket's name ("" before we queue). */
  mine: string;
  mineDeleted: boolean;
  identity: string;
  mode: QueueMode;
  durationSeconds: number;
  /** When we last saw the lock change (local ms). */
  lockSeenAt: number | undefined;
  /** The API server's clock now (epoch ms), when known. */
  serverNow: number | undefined;
  watching: boolean;
  syncedAt: number;
  stuckHead: StuckHead | undefined;
  conflictAt: number | undefined;
}

/** What to do about it. */
export interface QueueView {
  lock: V1Lease | undefined;
  take: boolean;
  /** It looks expired but no watch was open: list again before taking it. */
  confirm: boolean;
  /** A lock that only an older helm-lock can have written: label it so that our watch sees it. */
  adopt: boolean;
  newerHolder: HolderInfo | undefined;
  /** Our ticket was removed: rejoin at the back. */
  gone: boolean;
  /** Its ticket is to be deleted. */
  headGone: Ticket | undefined;
  /** When something may change without an event (local ms). */
  wakeAt: number;
  /** Our place (1: next), and who is right ahead. */
  place: number;
  ahead: HolderInfo | undefined;
  stuckHead: StuckHead | undefined;
  conflictAt: number | undefined;
}

/** Judges the queue at `s.now` (docs/design.md §2's rules). */
export function queueView(s: QueueState): QueueView {
  const { now, lock, serverNow } = s;
  const live = s.tickets.filter((t) => t.name === s.mine || !isStale(t, serverNow));
  const order = queueOrder(live);
  const me = order.find((t) => t.name === s.mine);
  const index = me ? order.indexOf(me) : 0;
  const holder = lock?.spec?.holderIdentity;
  const leaseEnds = lock && holder
    ? (s.lockSeenAt ?? now) + leaseMs(lock, s.durationSeconds)
    : -Infinity;
  const free = !lock || !holder || holder === s.identity || now >= leaseEnds;
  const newerHolder = me && s.mode === "newest" && lock && holder && holder !== s.identity &&
      heldByNewer(lock, me)
    ? holderInfo(lock)
    : undefined;

  let wakeAt = Infinity;
  let stuckHead: StuckHead | undefined;
  let headGone: Ticket | undefined;
  const head = order[0];
  if (free && head && head !== me) {
    stuckHead = s.stuckHead?.name === head.name ? s.stuckHead : { name: head.name, since: now };
    const goneAt = stuckHead.since + s.durationSeconds * 1000;
    if (now >= goneAt) headGone = head;
    else wakeAt = goneAt;
  }
  if (!free) wakeAt = leaseEnds;
  const expired = !!holder && holder !== s.identity && now >= leaseEnds;
  // A ticket ages out on the server's clock: look again when it would have.
  for (const t of live) {
    if (t.writtenAt === undefined || serverNow === undefined || t === me) continue;
    const at = now + t.writtenAt + TicketTimings.staleMs + TicketTimings.marginMs - serverNow;
    wakeAt = Math.min(wakeAt, Math.max(at, now + 1_000));
  }
  // A lock our create ran into but our watch has not shown within a second: an older one's.
  const conflictAt = lock ? undefined : s.conflictAt;
  const adopt = conflictAt !== undefined && now >= conflictAt + 1_000;
  if (conflictAt !== undefined) wakeAt = Math.min(wakeAt, conflictAt + 1_000);
  return {
    lock,
    adopt,
    take: free && index === 0 && !!me && conflictAt === undefined,
    confirm: free && index === 0 && expired && !s.watching && s.syncedAt < leaseEnds,
    newerHolder,
    gone: !me && s.mineDeleted,
    headGone,
    wakeAt,
    place: index + 1,
    ahead: index > 0 ? order[index - 1]?.info : undefined,
    stuckHead,
    conflictAt,
  };
}

/** What a waiter reports, at once and about every 10 s; `heldForMs` by the holder's clock. */
export interface WaitProgress {
  holder?: HolderInfo;
  waitedMs: number;
  heldForMs?: number;
  queue?: { place: number; ahead?: HolderInfo };
}

/** What a waiter reports of `view` after `waitedMs`; `now` dates the holder's time held. */
export function waitProgress(view: QueueView, waitedMs: number, now: Date): WaitProgress {
  const { lock } = view;
  const holder = lock?.spec?.holderIdentity ? holderInfo(lock) : undefined;
  const heldForMs = holder?.since ? Math.max(0, now.getTime() - holder.since.getTime()) : undefined;
  return {
    waitedMs,
    ...(holder ? { holder } : {}),
    ...(heldForMs === undefined ? {} : { heldForMs }),
    queue: { place: view.place, ...(view.ahead ? { ahead: view.ahead } : {}) },
  };
}

/** What a waiting job says about the queue and the holder, every 10 s. */
export function describeWait(p: WaitProgress): string {
  const parts = [];
  if (p.queue && p.queue.place > 1 && p.queue.ahead) {
    parts.push(`${ordinal(p.queue.place)} in line behind ${describeJob(p.queue.ahead)}`);
  } else if (p.queue) parts.push("next in line");
  const h = p.holder;
  if (!h) parts.push("the lock is free");
  else {
    parts.push(`held by ${h.identity}`);
    if (h.ciJobUrl) parts.push(`CI job ${h.ciJobUrl}`);
    if (h.user) parts.push(`user ${h.user}`);
    if (p.heldForMs !== undefined) parts.push(`for ${roughDuration(p.heldForMs)}`);
  }
  return parts.join(", ");
}

function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  return `${n}${teen ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th"}`;
}

const SUPERSEDED = new WeakSet<object>();

/**
 * Whether `err` says a newer job superseded this one (`--lock-queue newest`), not an outdated
 * order key: `--lock-superseded-ok` turns only the former into exit 0.
 */
export function isSuperseded(err: unknown): err is HelmLockError {
  return typeof err === "object" && err !== null && SUPERSEDED.has(err);
}

function describeJob(info: HolderInfo): string {
  if (info.ciJobUrl) return `CI job ${info.ciJobUrl}`;
  return `"${info.identity}"${info.user ? ` (user ${info.user})` : ""}`;
}

/** Exit 8: a newer job, `by`, holds the lock and this one waited under `--lock-queue newest`. */
export function supersededError(where: string, by: HolderInfo): HelmLockError {
  const err = new HelmLockError(
    ExitCode.Superseded,
    `Cannot deploy ${where} as this job is superseded: --lock-queue newest deploys only ` +
      `the newest waiting job, found a newer one, ${describeJob(by)}`,
  );
  SUPERSEDED.add(err);
  return err;
}

/** Exit 3: the lock was not taken within `waitedMs`, because of `holder` or `why`. */
export function timeoutError(
  where: string,
  lease: string,
  waitedMs: number,
  holder: HolderInfo | undefined,
  why?: string,
): HelmLockError {
  let who = why ?? "it is free, but jobs ahead in the queue took it first";
  if (holder && !why) {
    const details = [
      holder.ciJobUrl ? `CI job ${holder.ciJobUrl}` : "no CI job recorded",
      holder.user ? `user ${holder.user}` : undefined,
      holder.host ? `host ${holder.host}` : undefined,
    ].filter((d) => d).join(", ");
    const since = holder.since ? ` since ${holder.since.toISOString()}` : "";
    who = `it is held by "${holder.identity}" (${details})${since}`;
  }
  return new HelmLockError(
    ExitCode.LockTimeout,
    `Cannot acquire the lock on ${where} (Lease "${lease}") within ${
      roughDuration(waitedMs)
    }: ${who}; raise --lock-timeout to wait longer`,
  );
}
