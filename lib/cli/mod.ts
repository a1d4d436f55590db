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
import { importLater } from "../import_later.ts";
export type { CommandIO };

// helm-lock's own commands are loaded when one runs, not on every helm command's path.
/** `lock-list` (`lock_list.ts`). */
export const lockList = async (argv: string[], io: CommandIO): Promise<number> =>
  await (await importLater<typeof import("./lock_list.ts")>(
    new URL("./lock_list.ts", import.meta.url),
  )).lockList(argv, io);
/** `lock-status` (`lock_status.ts`). */
export const lockStatus = async (argv: string[], io: CommandIO): Promise<number> =>
  await (await importLater<typeof import("./lock_status.ts")>(
    new URL("./lock_status.ts", import.meta.url),
  )).lockStatus(argv, io);
/** `lock-unlock` (`lock_unlock.ts`). */
export const lockUnlock = async (argv: string[], io: CommandIO): Promise<number> =>
  await (await importLater<typeof import("./lock_unlock.ts")>(
    new URL("./lock_unlock.ts", import.meta.url),
  )).lockUnlock(argv, io);
export { runHelmDirectly } from "./passthrough.ts";
