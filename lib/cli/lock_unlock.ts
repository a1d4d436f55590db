/**
 * `helm-lock lock-unlock <release> [--force]`: removes what helm-lock left of a release
 * whose jobs are gone (`lib/lock/unlock.ts`): a lock no longer renewed, dead tickets, and with
 * `--force` everything.
 *
 * @module
 */

import { connectLoading } from "../kube/connection.ts";
import { kubeClient } from "../kube/rest.ts";
import { unlock } from "../lock/unlock.ts";
import { commandHelp, LOCK_UNLOCK } from "./help.ts";
import { type CommandIO, oneRelease, parseOwnArgs } from "./own_args.ts";
import { programName } from "./program.ts";

/**
 * Runs `lock-unlock` with the words after the command's name.
 *
 * @returns The exit code (0: nothing left to unlock).
 * @throws {HelmLockError} for bad arguments, a holder that still renews, a lock that changed
 * hands, an unreachable or refusing API server.
 */
export async function lockUnlock(argv: string[], io: CommandIO): Promise<number> {
  const args = parseOwnArgs(argv, LOCK_UNLOCK);
  if (args.help) {
    io.print(commandHelp(LOCK_UNLOCK, programName()));
    return 0;
  }
  const release = oneRelease(args, LOCK_UNLOCK);
  const conn = await connectLoading(args.cluster);
  // One connection for the command's few requests; the process ends right after.
  const client = kubeClient(conn);
  io.debug(`API server ${conn.server} as ${conn.user}`);
  // Each refusal names its verb (list, get or delete).
  await unlock(client, conn.namespace, release, { force: args.on("force"), info: io.info });
  return 0;
}
