/**
 * The command line: parsing helm-lock's argv (`args.ts`, with its own `--lock-*` flags in
 * `lock_flags.ts`) and the commands it runs (`locked_run.ts`: lock, check and recover, run
 * helm, release; helm-lock's own commands, one file each: `lock_status.ts`, `lock_list.ts`,
 * `lock_unlock.ts`, their command lines read by `own_args.ts`). `main.ts` only dispatches to what is exported here and maps errors to exit
 * codes.
 *
 * May import: every other folder of `lib/`; nothing imports `cli/` but `main.ts`.
 *
 * @module
 */

export { type Invocation, parseArgs, type ParsedArgs, type Subcommand } from "./args.ts";
export { lockedRun, type Reporter } from "./locked_run.ts";
import type { CommandIO } from "./own_args.ts";
export type { CommandIO };

// helm-lock's own commands are loaded when one runs, not on every helm command's path.
/** `lock-list` (`lock_list.ts`). */
export const lockList = async (argv: string[], io: CommandIO): Promise<number> =>
  await (await import("./lock_list.ts")).lockList(argv, io);
/** `lock-status` (`lock_status.ts`). */
export const lockStatus = async (argv: string[], io: CommandIO): Promise<number> =>
  await (await import("./lock_status.ts")).lockStatus(argv, io);
/** `lock-unlock` (`lock_unlock.ts`). */
export const lockUnlock = async (argv: string[], io: CommandIO): Promise<number> =>
  await (await import("./lock_unlock.ts")).lockUnlock(argv, io);
export { runHelmDirectly } from "./passthrough.ts";
