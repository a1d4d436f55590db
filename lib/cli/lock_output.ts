/**
 * What `lock-status` and `lock-list` print with `-o json` and `-o yaml`: the versioned objects
 * of docs/output.md (tests/cli/output_e2e_test.ts holds the two to each other).
 *
 * @module
 */

import { dump } from "js-yaml";
import type { LockInfo, QueueEntry } from "../lock/status.ts";
import { hasUnsafe, quotedString } from "../sanitize.ts";
import type { CommandIO } from "./own_args.ts";

/** The schema's `apiVersion`. */
export const API_VERSION = "helm-lock.dev/v1";

/** The release as helm has it; `reason` says why `status` is `unknown`. */
export interface ReleaseFields {
  status: string;
  revision: number | null;
  updated: string | null;
  description: string | null;
  reason: string | null;
}

/** `name` is the release. */
type Metadata = { name: string; namespace: string };

/** `lock-status -o json|yaml`. */
export interface LockStatus {
  apiVersion: typeof API_VERSION;
  kind: "LockStatus";
  metadata: Metadata;
  lock: ReturnType<typeof lockFields> | null;
  queue: ReturnType<typeof queueItems>;
  release: ReleaseFields;
}

/** One item of a {@linkcode LockList}: a release with a lock, a queue, or both. */
export type Lock =
  & { apiVersion: typeof API_VERSION; kind: "Lock"; metadata: Metadata }
  & ReturnType<typeof lockFields>
  & { queue: ReturnType<typeof queueItems> };

/** `lock-list -o json|yaml`, sorted by namespace, then release. */
export interface LockList {
  apiVersion: typeof API_VERSION;
  kind: "LockList";
  items: Lock[];
}

/** Whole seconds from `iso` to `now`; `null` without a time, 0 for one in the future. */
function ageSeconds(iso: string | null | undefined, now: number): number | null {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? null : Math.max(0, Math.floor((now - t) / 1000));
}

/** The lock part of the objects, from what the Lease says. */
export function lockFields(info: LockInfo, now: number) {
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

/** The queue, next in line first; whether a job looks dead is the API server's judgement. */
export function queueItems(queue: readonly QueueEntry[], now: number) {
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
 * Prints the object as `-o json` (indented, as kubectl does) or `-o yaml`, where a string with
 * a character a terminal acts on is a double-quoted scalar with it escaped (docs/output.md).
 */
export function printObject(
  io: CommandIO,
  object: LockStatus | LockList,
  format: "json" | "yaml",
): void {
  if (format === "json") return io.out(JSON.stringify(object, null, 2));
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
  io.print(text.replace(new RegExp(`${mark}(\\d+)`, "g"), (_, i: string) => quoted[Number(i)]!));
}
