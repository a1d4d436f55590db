/**
 * The errors a waiting job ends with (`take.ts`): the lock not taken within `--lock-timeout`
 * (exit 3, naming the holder, its CI job and since when), and a job superseded by a newer one
 * under `--lock-queue newest` (exit 8, naming it).
 *
 * @module
 */

import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import type { HolderInfo } from "./lease.ts";

const SUPERSEDED = new WeakSet<object>();

/**
 * Whether `err` says a newer job superseded this one (`--lock-queue newest`), not an outdated
 * order key: `--lock-superseded-ok` turns only the former into exit 0.
 */
export function isSuperseded(err: unknown): err is HelmLockError {
  return typeof err === "object" && err !== null && SUPERSEDED.has(err);
}

/** "CI job <url>" when known, else the identity (and user). */
export function describeJob(info: HolderInfo): string {
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

/**
 * Exit 3: the lock was not taken within `waitedMs`, because of `holder` (when held) or `why`.
 */
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
