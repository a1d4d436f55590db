/** `helm-lock lock-unlock <release> [--force]` (`lib/lock/unlock.ts`). @module */

import { unlock } from "../lock/unlock.ts";
import { LOCK_UNLOCK } from "./help.ts";
import { type CommandIO, connectFor, ownArgs } from "./own_args.ts";

/**
 * Runs `lock-unlock` with the words after its name: 0 when nothing is left to unlock.
 *
 * @throws {HelmLockError} for bad arguments, a holder that still renews, a lock that changed
 * hands, an unreachable or refusing API server.
 */
export async function lockUnlock(argv: string[], io: CommandIO): Promise<number> {
  const args = ownArgs(argv, LOCK_UNLOCK, io);
  if (!args) return 0;
  const [release, extra] = args.positionals;
  if (release === undefined || extra !== undefined) throw args.misused("one release name");
  const { conn, client } = connectFor(args, io);
  // Each refusal names its verb (list, get or delete).
  await unlock(client, conn.namespace, release, { force: args.on("force"), info: io.info });
  return 0;
}
