/**
 * `helm-lock lock-status <release>`: who holds the release's lock, since when, its CI job,
 * the queue behind it, and the release's own state (read with `helm history`, as helm
 * sees it). `-o json|yaml` for scripts (`lock_output.ts`). Changes nothing.
 *
 * @module
 */

import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { readRelease, type ReleaseState } from "../helm/storage.ts";
import { connectLoading } from "../kube/connection.ts";
import { kubeClient } from "../kube/rest.ts";
import { kubeLeaseApi, namingFailures } from "../lock/cache.ts";
import { lockInfo, readLeases } from "../lock/status.ts";
import { commandHelp, LOCK_STATUS } from "./help.ts";
import {
  API_VERSION,
  lockFields,
  type LockStatus,
  printObject,
  queueItems,
  type ReleaseFields,
} from "./lock_output.ts";
import {
  type CommandIO,
  globalArgsOf,
  oneRelease,
  outputFormat,
  parseOwnArgs,
} from "./own_args.ts";
import { programName } from "./program.ts";

function ago(iso: string | null, now: number): string {
  if (!iso) return "";
  const ms = now - new Date(iso).getTime();
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
  let found: ReleaseState;
  try {
    found = await readRelease(release, globalArgs, { namespace });
  } catch (err) {
    if (!(err instanceof HelmLockError && err.code === ExitCode.Forbidden)) throw err;
    if (!/forbidden/i.test(err.message)) throw err;
    io.info(`${err.message}; showing its state as "unknown: forbidden"`);
    return {
      status: "unknown",
      revision: null,
      updated: null,
      description: null,
      reason: "forbidden",
    };
  }
  const current = found.current;
  return {
    status: current?.status ?? "not-installed",
    revision: current?.revision ?? null,
    updated: current?.updated ?? null,
    description: current?.description ?? null,
    reason: null,
  };
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
      rows.push([
        "RENEWED",
        `${lock.renewTime}${ago(lock.renewTime, now)}, lease ${lock.leaseDurationSeconds ?? "?"}s`,
      ]);
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
 * Runs `lock-status` with the words after the command's name.
 *
 * @returns The exit code: 0 when the status (or the help) was printed.
 * @throws {HelmLockError} For a bad command line (2), an unreachable API server (6), or a
 * refused request (7, naming the verb and resource).
 */
export async function lockStatus(argv: string[], io: CommandIO): Promise<number> {
  const args = parseOwnArgs(argv, LOCK_STATUS);
  if (args.help) {
    io.print(commandHelp(LOCK_STATUS, programName()));
    return 0;
  }
  const format = outputFormat(args, LOCK_STATUS);
  const release = oneRelease(args, LOCK_STATUS);
  const conn = await connectLoading(args.cluster);
  // One connection for the command's few requests; the process ends right after.
  const client = kubeClient(conn);
  io.debug(`API server ${conn.server} as ${conn.user}`);
  // Each refusal names its verb (list, or get for an older build's lock).
  const api = namingFailures(kubeLeaseApi(client, conn.namespace), conn);
  const leases = await readLeases(client, conn.namespace, release, api);
  const info = lockInfo(leases);
  const now = Date.now();
  const status: LockStatus = {
    apiVersion: API_VERSION,
    kind: "LockStatus",
    metadata: { name: release, namespace: conn.namespace },
    lock: info.state === "none" ? null : lockFields(info, now),
    queue: queueItems(info.queue, now),
    release: await releaseFields(release, globalArgsOf(args.flags), conn.namespace, io),
  };
  if (format !== "table") await printObject(io, status, format);
  else for (const line of table(status, now)) io.out(line);
  return 0;
}
