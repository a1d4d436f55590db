/**
 * What `lock-status` and `lock-list` print with `-o json` and `-o yaml`: kubectl-like objects
 * of a versioned schema (`apiVersion: helm-lock.dev/v1`), documented with an example per kind
 * in docs/output.md (tests/cli/output_e2e_test.ts compares the real output with them).
 *
 * Every field is always present, `null` when unknown, so scripts need no existence checks;
 * times are RFC 3339 as the writer's clock had them, ages are whole seconds by this machine's
 * clock. A new field may be added within `v1`; none is removed or changes its type.
 *
 * @module
 */

import type { LockInfo, QueueEntry } from "../lock/status.ts";
import { hasUnsafe, quotedString } from "../sanitize.ts";
import type { CommandIO, OutputFormat } from "./own_args.ts";

/** The schema's `apiVersion`. */
export const API_VERSION = "helm-lock.dev/v1";

/** A lock as `LockStatus.lock` and each `LockList` item show it. */
export interface LockFields {
  /** The Lease's name: `helm-lock-<release>`. */
  lease: string;
  /** `false` for a Lease whose holder was cleared (a released lock). */
  held: boolean;
  holder: string | null;
  ciJobUrl: string | null;
  user: string | null;
  host: string | null;
  /** The holder's helm command line, secrets hidden. */
  command: string | null;
  /** When the holder took the lock. */
  since: string | null;
  /** Seconds since `since`. */
  ageSeconds: number | null;
  /** The holder's last renewal. */
  renewTime: string | null;
  leaseDurationSeconds: number | null;
}

/** One job waiting for the lock. */
export interface QueueItem {
  /** 1 for the job next in line. */
  place: number;
  /** Its ticket: a Lease `helm-lock.ticket.<release>-<suffix>`. */
  ticket: string;
  identity: string;
  ciJobUrl: string | null;
  /** When it started waiting. */
  since: string | null;
  ageSeconds: number | null;
  /**
   * Its ticket was not renewed for over a minute by the API server's own clock: the job is
   * gone, and the next job that sees it (or `lock-unlock`) removes it.
   */
  looksDead: boolean;
}

/** The release as helm has it. */
export interface ReleaseFields {
  /**
   * helm's status of the newest revision (`deployed`, `pending-upgrade`, ...), `not-installed`
   * when helm has no such release, `unknown` when it could not be read (`reason` says why).
   */
  status: string;
  revision: number | null;
  updated: string | null;
  description: string | null;
  /** Why `status` is `unknown`: `forbidden` (RBAC hides helm's release records). */
  reason: string | null;
}

interface Metadata {
  /** The release name. */
  name: string;
  namespace: string;
}

/** `lock-status -o json|yaml`. */
export interface LockStatus {
  apiVersion: typeof API_VERSION;
  kind: "LockStatus";
  metadata: Metadata;
  /** `null` when the release has no lock. */
  lock: LockFields | null;
  /** The jobs waiting behind the holder, next in line first. */
  queue: QueueItem[];
  release: ReleaseFields;
}

/** One item of a {@linkcode LockList}: a release with a lock, a queue, or both. */
export type Lock =
  & { apiVersion: typeof API_VERSION; kind: "Lock"; metadata: Metadata }
  & LockFields
  & { queue: QueueItem[] };

/** `lock-list -o json|yaml`. */
export interface LockList {
  apiVersion: typeof API_VERSION;
  kind: "LockList";
  /** Sorted by namespace, then release. */
  items: Lock[];
}

/** Whole seconds from `iso` to `now`; `null` without a time, 0 for one in the future. */
export function ageSeconds(iso: string | null | undefined, now: number): number | null {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? null : Math.max(0, Math.floor((now - t) / 1000));
}

/** The lock part of the objects, from what the Lease says. */
export function lockFields(info: LockInfo, now: number): LockFields {
  return {
    lease: info.lease,
    held: info.state === "held",
    holder: info.holder ?? null,
    ciJobUrl: info.ciJobUrl ?? null,
    user: info.user ?? null,
    host: info.host ?? null,
    command: info.command ?? null,
    since: info.since ?? null,
    ageSeconds: ageSeconds(info.since, now),
    renewTime: info.renewTime ?? null,
    leaseDurationSeconds: info.leaseDurationSeconds ?? null,
  };
}

/**
 * The queue as {@linkcode QueueItem}s, next in line first. Whether a job looks dead is the
 * API server's judgement (`lib/lock/status.ts`), not this machine's clock against the
 * waiter's.
 */
export function queueItems(queue: readonly QueueEntry[], now: number): QueueItem[] {
  return queue.map((q) => ({
    place: q.place,
    ticket: q.ticket,
    identity: q.identity,
    ciJobUrl: q.ciJobUrl ?? null,
    since: q.since ?? null,
    ageSeconds: ageSeconds(q.since, now),
    looksDead: q.looksDead,
  }));
}

/** A {@linkcode LockList} of the releases' locks and queues. */
export function lockList(locks: readonly LockInfo[], now: number): LockList {
  return {
    apiVersion: API_VERSION,
    kind: "LockList",
    items: locks.map((l) => ({
      apiVersion: API_VERSION,
      kind: "Lock",
      metadata: { name: l.release, namespace: l.namespace },
      ...lockFields(l, now),
      queue: queueItems(l.queue, now),
    })),
  };
}

/**
 * The object as `-o yaml`, by js-yaml (loaded only then). A string with a
 * character a terminal acts on (an escape, a bidi control, a newline: a Lease's holder and
 * annotations are anyone's who may write Leases) is written as a double-quoted scalar with
 * that character escaped (`quotedString()`), so the text is safe to print as it is and loads
 * back to the same value.
 */
export async function toYaml(object: LockStatus | LockList): Promise<string> {
  const { dump } = await import("./yaml_dump.ts");
  // Such strings go through js-yaml as placeholders (a plain scalar no value has), then are
  // put back quoted: js-yaml prints bidi controls raw.
  const mark = `helm-lock-${crypto.randomUUID().replaceAll("-", "")}-`;
  const quoted: string[] = [];
  const swap = (value: unknown): unknown =>
    typeof value === "string"
      ? hasUnsafe(value) ? `${mark}${quoted.push(quotedString(value)) - 1}` : value
      : Array.isArray(value)
      ? value.map(swap)
      : value !== null && typeof value === "object"
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, swap(v)]))
      : value;
  // No line folding: a long command line stays one line, as kubectl prints it.
  const text = dump(swap(object), { lineWidth: -1, noRefs: true }).trimEnd();
  return text.replace(new RegExp(`${mark}(\\d+)`, "g"), (_, i: string) => quoted[Number(i)]!);
}

/**
 * Prints the object as `-o json` (indented, as kubectl prints it; made printable as one JSON
 * line) or `-o yaml` ({@linkcode toYaml}).
 */
export async function printObject(
  io: CommandIO,
  object: LockStatus | LockList,
  format: Exclude<OutputFormat, "table">,
): Promise<void> {
  if (format === "json") io.out(JSON.stringify(object, null, 2));
  else io.print(await toYaml(object));
}
