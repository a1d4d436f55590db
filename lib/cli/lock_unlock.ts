/**
 * `helm-lock lock-unlock <release> [--force]`: removes what helm-lock left of a release
 * whose jobs are gone (`lib/lock/unlock.ts`): a lock no longer renewed, dead tickets, and with
 * `--force` everything.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import { apiError, isStatus } from "../kube/api_error.ts";
import { connect } from "../kube/connection.ts";
import { kubeClient } from "../kube/rest.ts";
import { unlock } from "../lock/unlock.ts";
import { type CommandIO, parseOwnArgs } from "./own_args.ts";

const COMMAND = "lock-unlock";
const USAGE = "helm-lock lock-unlock <RELEASE> [-n NAMESPACE] [--force]";
/**
 * Runs `lock-unlock` with the words after the command's name.
 *
 * @returns 0 when the lock is gone (removed, released meanwhile, or there was none).
 * @throws {HelmLockError} {@linkcode ExitCode.Internal} when the holder still renews and
 * `--force` was not given, or the lock changed hands; 2 for a bad command line; 6 and 7 for
 * an unreachable or refusing API server.
 */
export async function lockUnlock(argv: string[], io: CommandIO): Promise<number> {
  const args = parseOwnArgs(argv, COMMAND, USAGE, [{ name: "force", value: false }]);
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
  try {
    await unlock(client, conn.namespace, release, { force: args.on("force"), info: io.info });
  } catch (err) {
    throw apiError(err, {
      verb: isStatus(err, 403) ? "delete" : "get",
      resource: "leases",
      namespace: conn.namespace,
      user: conn.user,
      server: conn.server,
    });
  }
  return 0;
}
