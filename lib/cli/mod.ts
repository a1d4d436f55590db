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
export type { CommandIO } from "./own_args.ts";
export { lockList } from "./lock_list.ts";
export { lockStatus } from "./lock_status.ts";
export { lockUnlock } from "./lock_unlock.ts";
export { runHelmDirectly } from "./passthrough.ts";
