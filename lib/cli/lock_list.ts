/**
 * `helm-lock lock-list [-A]`: the helm-lock locks (Leases labelled
 * `app.kubernetes.io/managed-by=helm-lock`) of the namespace, or of all namespaces with
 * `-A/--all-namespaces`. `-o json` for scripts. Changes nothing.
 *
 * @module
 */

import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { apiError } from "../kube/api_error.ts";
import { connect } from "../kube/connection.ts";
import { kubeClient } from "../kube/rest.ts";
import { listReleases, lockInfo } from "../lock/status.ts";
import { type CommandIO, OUTPUT_FLAG, outputFormat, parseOwnArgs } from "./own_args.ts";

const COMMAND = "lock-list";
const USAGE = "helm-lock lock-list [-n NAMESPACE | -A] [-o table|json]";

/**
 * Runs `lock-list` with the words after the command's name.
 *
 * @returns The exit code: 0 when the list was printed (also when it is empty).
 * @throws {HelmLockError} For a bad command line (2) or a refusing or unreachable API server.
 */
export async function lockList(argv: string[], io: CommandIO): Promise<number> {
  const args = parseOwnArgs(argv, COMMAND, USAGE, [
    OUTPUT_FLAG,
    { name: "all-namespaces", short: "A", value: false },
  ]);
  const format = outputFormat(args, COMMAND);
  if (args.positionals.length > 0) {
    throw new HelmLockError(
      ExitCode.Usage,
      `Cannot run ${COMMAND} as it takes no arguments: expected "${USAGE}", found ${
        JSON.stringify(args.positionals)
      }`,
    );
  }
  const all = args.on("all-namespaces");
  const conn = connect(args.cluster);
  // One connection for the command's few requests; the process ends right after.
  const client = kubeClient(conn);
  io.debug(`API server ${conn.server} as ${conn.user}`);
  let leases;
  try {
    leases = await listReleases(client, all ? undefined : conn.namespace);
  } catch (err) {
    throw apiError(err, {
      verb: "list",
      resource: "leases",
      namespace: all ? "(all namespaces)" : conn.namespace,
      user: conn.user,
      server: conn.server,
    });
  }
  const locks = leases.map(lockInfo);
  if (format === "json") {
    io.out(JSON.stringify(locks, null, 2));
    return 0;
  }
  const now = Date.now();
  const rows = [["NAMESPACE", "RELEASE", "HOLDER", "HELD FOR", "CI JOB"]];
  for (const l of locks) {
    const held = l.since ? roughDuration(Math.max(0, now - new Date(l.since).getTime())) : "";
    rows.push([
      l.namespace,
      l.release,
      l.state === "held" ? l.holder ?? "" : `(${l.state})`,
      l.state === "held" ? held : "",
      l.ciJobUrl ?? "",
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) io.out(r.map((c, i) => c.padEnd(widths[i]!)).join("   ").trimEnd());
  return 0;
}
