/** `helm-lock lock-list [-A] [-o table|json|yaml]`. @module */

import { roughDuration } from "../duration.ts";
import { apiError } from "../kube/api_error.ts";
import { listReleases, lockInfo } from "../lock/status.ts";
import { LOCK_LIST } from "./help.ts";
import { lockList as lockListObject, printObject } from "./lock_output.ts";
import { type CommandIO, connectFor, ownArgs } from "./own_args.ts";

/**
 * Runs `lock-list` with the words after its name: 0 when the list (even empty) was printed.
 *
 * @throws {HelmLockError} For a bad command line (2), an unreachable API server (6), or a
 * refused request (7, naming the verb and resource).
 */
export async function lockList(argv: string[], io: CommandIO): Promise<number> {
  const args = ownArgs(argv, LOCK_LIST, io);
  if (!args) return 0;
  const format = args.format();
  if (args.positionals.length > 0) throw args.misused("no arguments");
  const all = args.on("all-namespaces");
  const { conn, client } = connectFor(args, io);
  const leases = await listReleases(client, all ? undefined : conn.namespace).catch((err) => {
    const namespace = all ? "(all namespaces)" : conn.namespace;
    const { user, server } = conn;
    throw apiError(err, { verb: "list", resource: "leases", namespace, user, server });
  });
  const list = lockListObject(leases.map(lockInfo), Date.now());
  if (format !== "table") {
    printObject(io, list, format);
    return 0;
  }
  const rows = [
    ["NAMESPACE", "RELEASE", "HOLDER", "HELD FOR", "WAITING", "CI JOB"],
    ...list.items.map((l) => [
      l.metadata.namespace,
      l.metadata.name,
      l.held ? l.holder ?? "" : "(free)",
      l.held && l.ageSeconds !== null ? roughDuration(l.ageSeconds * 1000) : "",
      String(l.queue.length),
      l.ciJobUrl ?? "",
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) io.out(r.map((c, i) => c.padEnd(widths[i]!)).join("   ").trimEnd());
  return 0;
}
