/**
 * `helm-lock lock-list [-A]`: the helm-lock locks (Leases labelled
 * `app.kubernetes.io/managed-by=helm-lock`) of the namespace, or of all namespaces with
 * `-A/--all-namespaces`. `-o json|yaml` for scripts (`lock_output.ts`). Changes nothing.
 *
 * @module
 */

import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { apiError } from "../kube/api_error.ts";
import { connectLoading } from "../kube/connection.ts";
import { kubeClient } from "../kube/rest.ts";
import { listReleases, lockInfo } from "../lock/status.ts";
import { commandHelp, LOCK_LIST } from "./help.ts";
import { lockList as lockListObject, printObject } from "./lock_output.ts";
import { type CommandIO, outputFormat, parseOwnArgs } from "./own_args.ts";
import { programName } from "./program.ts";

/**
 * Runs `lock-list` with the words after the command's name.
 *
 * @returns The exit code: 0 when the list (or the help) was printed, also when it is empty.
 * @throws {HelmLockError} For a bad command line (2), an unreachable API server (6), or a
 * refused request (7, naming the verb and resource).
 */
export async function lockList(argv: string[], io: CommandIO): Promise<number> {
  const args = parseOwnArgs(argv, LOCK_LIST);
  const program = programName();
  if (args.help) {
    io.print(commandHelp(LOCK_LIST, program));
    return 0;
  }
  const format = outputFormat(args, LOCK_LIST);
  if (args.positionals.length > 0) {
    throw new HelmLockError(
      ExitCode.Usage,
      `Cannot run ${LOCK_LIST.name} as it takes no arguments: expected ` +
        `"${program} ${LOCK_LIST.name} ${LOCK_LIST.usage}", found ${
          JSON.stringify(args.positionals)
        }`,
    );
  }
  const all = args.on("all-namespaces");
  const conn = await connectLoading(args.cluster);
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
  const list = lockListObject(leases.map(lockInfo), Date.now());
  if (format !== "table") {
    await printObject(io, list, format);
    return 0;
  }
  const rows = [["NAMESPACE", "RELEASE", "HOLDER", "HELD FOR", "WAITING", "CI JOB"]];
  for (const l of list.items) {
    rows.push([
      l.metadata.namespace,
      l.metadata.name,
      l.held ? l.holder ?? "" : "(free)",
      l.held && l.ageSeconds !== null ? roughDuration(l.ageSeconds * 1000) : "",
      String(l.queue.length),
      l.ciJobUrl ?? "",
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) io.out(r.map((c, i) => c.padEnd(widths[i]!)).join("   ").trimEnd());
  return 0;
}
