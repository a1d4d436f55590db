/**
 * `helm-lock lock-status <release>`: who holds the release's lock, since when, its CI job,
 * the queue behind it, and the release's own state (read with `helm history`, as helm
 * sees it). `-o json` for scripts. Changes nothing.
 *
 * @module
 */

import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { readRelease } from "../helm/release.ts";
import { apiError } from "../kube/api_error.ts";
import { connect } from "../kube/connection.ts";
import { kubeClient } from "../kube/rest.ts";
import { type LockInfo, lockInfo, readLeases } from "../lock/status.ts";
import {
  type CommandIO,
  globalArgsOf,
  OUTPUT_FLAG,
  outputFormat,
  parseOwnArgs,
} from "./own_args.ts";

const COMMAND = "lock-status";
const USAGE = "helm-lock lock-status <RELEASE> [-n NAMESPACE] [-o table|json]";

/** What `lock-status -o json` prints. */
export interface LockStatus {
  namespace: string;
  release: string;
  /** The lock, or `null` when the release is not locked. */
  lock: LockInfo | null;
  /** The release as helm has it, or `null` when helm has no such release. */
  state: { status: string; revision: number; updated?: string; description?: string } | null;
}

function ago(iso: string | undefined, now: Date): string {
  if (!iso) return "";
  const ms = now.getTime() - new Date(iso).getTime();
  return ms >= 0 ? ` (${roughDuration(ms)} ago)` : "";
}

/**
 * Runs `lock-status` with the words after the command's name.
 *
 * @returns The exit code: 0 when the status was printed.
 * @throws {HelmLockError} For a bad command line (2) or a refusing or unreachable API server.
 */
export async function lockStatus(argv: string[], io: CommandIO): Promise<number> {
  const args = parseOwnArgs(argv, COMMAND, USAGE, [OUTPUT_FLAG]);
  const format = outputFormat(args, COMMAND);
  const [release, extra] = args.positionals;
  if (release === undefined || extra !== undefined) {
    throw new HelmLockError(
      ExitCode.Usage,
      `Cannot run ${COMMAND} as it takes one release name: expected "${USAGE}", found ${
        JSON.stringify(args.positionals)
      }`,
    );
  }
  const conn = connect(args.cluster);
  // One connection for the command's few requests; the process ends right after.
  const client = kubeClient(conn);
  io.debug(`API server ${conn.server} as ${conn.user}`);
  let leases;
  try {
    leases = await readLeases(client, conn.namespace, release);
  } catch (err) {
    throw apiError(err, {
      verb: "list",
      resource: "leases",
      namespace: conn.namespace,
      user: conn.user,
      server: conn.server,
    });
  }
  const lock = leases.lock || leases.tickets.length > 0 || leases.record ? lockInfo(leases) : null;
  const found = await readRelease(release, globalArgsOf(args.flags), { namespace: conn.namespace });
  const status: LockStatus = {
    namespace: conn.namespace,
    release,
    lock,
    state: found.current
      ? {
        status: found.current.status,
        revision: found.current.revision,
        ...(found.current.updated ? { updated: found.current.updated } : {}),
        ...(found.current.description ? { description: found.current.description } : {}),
      }
      : null,
  };
  if (format === "json") {
    io.out(JSON.stringify(status, null, 2));
    return 0;
  }
  const now = new Date();
  const rows: Array<[string, string]> = [["RELEASE", release], ["NAMESPACE", conn.namespace]];
  if (!lock) {
    rows.push(["LOCK", "none"]);
  } else if (lock.state !== "held") {
    rows.push(["LOCK", `${lock.lease}, ${lock.state === "free" ? "free (no holder)" : "none"}`]);
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
  if (lock) {
    rows.push([
      "QUEUE",
      lock.queue.length === 0
        ? "none"
        : lock.queue.map((q) =>
          `${q.place}. ${q.identity}${q.ciJobUrl ? ` ${q.ciJobUrl}` : ""}${
            q.looksDead ? " (looks dead)" : ""
          }`
        ).join("; "),
    ]);
  }
  rows.push([
    "STATUS",
    status.state ? `${status.state.status} (revision ${status.state.revision})` : "not installed",
  ]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  for (const [k, v] of rows) io.out(`${`${k}:`.padEnd(width)}${v}`);
  return 0;
}
