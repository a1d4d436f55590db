/** `helm-lock lock-status <release> [-o table|json|yaml]`. @module */

import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { readRelease } from "../helm/storage.ts";
import { kubeLeaseApi, namingFailures } from "../lock/cache.ts";
import { lockInfo, readLeases } from "../lock/status.ts";
import { LOCK_STATUS } from "./help.ts";
import {
  API_VERSION,
  lockFields,
  type LockStatus,
  printObject,
  queueItems,
  type ReleaseFields,
} from "./lock_output.ts";
import { type CommandIO, connectFor, ownArgs } from "./own_args.ts";

function ago(iso: string | null, now: number): string {
  const ms = iso ? now - new Date(iso).getTime() : -1;
  return ms >= 0 ? ` (${roughDuration(ms)} ago)` : "";
}

/**
 * The release's state from helm, or `unknown: forbidden` when RBAC hides helm's release
 * records (no `list` on Secrets): the lock is worth showing without it (issue 29).
 */
async function releaseFields(
  release: string,
  globalArgs: string[],
  namespace: string,
  io: CommandIO,
): Promise<ReleaseFields> {
  try {
    const { current } = await readRelease(release, globalArgs, { namespace });
    return {
      status: current?.status ?? "not-installed",
      revision: current?.revision ?? null,
      updated: current?.updated ?? null,
      description: current?.description ?? null,
      reason: null,
    };
  } catch (err) {
    const forbidden = err instanceof HelmLockError && err.code === ExitCode.Forbidden;
    if (!forbidden || !/forbidden/i.test(err.message)) throw err;
    io.info(`${err.message}; showing its state as "unknown: forbidden"`);
    const unknown = { revision: null, updated: null, description: null };
    return { status: "unknown", ...unknown, reason: "forbidden" };
  }
}

/** The table for people. */
function table(status: LockStatus, now: number): string[] {
  const { lock, queue, release } = status;
  const rows: Array<[string, string]> = [
    ["RELEASE", status.metadata.name],
    ["NAMESPACE", status.metadata.namespace],
  ];
  if (!lock) {
    rows.push(["LOCK", "none"]);
  } else if (!lock.held) {
    rows.push(["LOCK", `${lock.lease}, free (no holder)`]);
  } else {
    rows.push(["LOCK", `${lock.lease}, held by ${lock.holder}`]);
    if (lock.since) rows.push(["SINCE", `${lock.since}${ago(lock.since, now)}`]);
    if (lock.ciJobUrl) rows.push(["CI JOB", lock.ciJobUrl]);
    if (lock.user) rows.push(["USER", lock.user]);
    if (lock.host) rows.push(["HOST", lock.host]);
    if (lock.command) rows.push(["COMMAND", lock.command]);
    if (lock.renewTime) {
      const lease = `lease ${lock.leaseDurationSeconds ?? "?"}s`;
      rows.push(["RENEWED", `${lock.renewTime}${ago(lock.renewTime, now)}, ${lease}`]);
    }
  }
  if (lock || queue.length > 0) {
    rows.push([
      "QUEUE",
      queue.length === 0
        ? "none"
        : queue.map((q) =>
          `${q.place}. ${q.identity}${q.ciJobUrl ? ` ${q.ciJobUrl}` : ""}${
            q.ageSeconds === null ? "" : ` waiting ${roughDuration(q.ageSeconds * 1000)}`
          }${q.looksDead ? " (looks dead)" : ""}`
        ).join("; "),
    ]);
  }
  rows.push([
    "STATUS",
    release.status === "unknown" && release.reason
      ? `unknown: ${release.reason}`
      : release.revision === null
      ? release.status === "not-installed" ? "not installed" : release.status
      : `${release.status} (revision ${release.revision})`,
  ]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`);
}

/**
 * Runs `lock-status` with the words after its name: 0 when the status was printed.
 *
 * @throws {HelmLockError} For a bad command line (2), an unreachable API server (6), or a
 * refused request (7, naming the verb and resource).
 */
export async function lockStatus(argv: string[], io: CommandIO): Promise<number> {
  const args = ownArgs(argv, LOCK_STATUS, io);
  if (!args) return 0;
  const format = args.format();
  const [release, extra] = args.positionals;
  if (release === undefined || extra !== undefined) throw args.misused("one release name");
  const { conn, client } = connectFor(args, io);
  // Each refusal names its verb (list, or get for an older build's lock).
  const api = namingFailures(kubeLeaseApi(client, conn.namespace), conn);
  const info = lockInfo(await readLeases(client, conn.namespace, release, api));
  const now = Date.now();
  const status: LockStatus = {
    apiVersion: API_VERSION,
    kind: "LockStatus",
    metadata: { name: release, namespace: conn.namespace },
    lock: info.state === "none" ? null : lockFields(info, now),
    queue: queueItems(info.queue, now),
    release: await releaseFields(release, args.globalArgs, conn.namespace, io),
  };
  if (format !== "table") printObject(io, status, format);
  else for (const line of table(status, now)) io.out(line);
  return 0;
}
