/**
 * The command line: parsing helm-lock's argv (`args.ts`, with its own `--lock-*` flags in
 * `lock_flags.ts`) and the commands it runs (`locked_run.ts`: lock, check and recover, run
 * helm, release). `main.ts` only dispatches to what is exported here and maps errors to exit
 * codes.
 *
 * May import: every other folder of `lib/`; nothing imports `cli/` but `main.ts`.
 *
 * @module
 */

export { type Invocation, parseArgs, type ParsedArgs } from "./args.ts";
export { lockedRun, type Reporter } from "./locked_run.ts";
