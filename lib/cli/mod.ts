/**
 * The command line: parsing helm-lock's argv (`args.ts`, with its own `--lock-*` flags in
 * `lock_flags.ts`) and the commands it runs (`locked_run.ts`: lock, check and recover, run
 * helm, release; helm-lock's own commands, one file each: `lock_status.ts`, `lock_list.ts`,
 * `lock_unlock.ts`, `completion.ts` and `complete.ts`, their command lines read by
 * `own_args.ts` from their declarations in `help.ts`; `-o json|yaml` in `lock_output.ts`).
 * `main.ts` only dispatches to what is exported here and maps errors to exit codes.
 *
 * May import: every other folder of `lib/`; nothing imports `cli/` but `main.ts`.
 *
 * @module
 */

import type { Subcommand } from "./args.ts";
export { type Invocation, parseArgs, type ParsedArgs, type Subcommand } from "./args.ts";
export { lockedRun, type Reporter } from "./locked_run.ts";
import type { CommandIO } from "./own_args.ts";
import { importLater } from "../import_later.ts";
export type { CommandIO };

type OwnCommandRun = (argv: string[], io: CommandIO) => Promise<number>;

// helm-lock's own commands, its help and the completion are loaded when they run, not on every
// helm command's path.
/** helm-lock's own commands by name. */
export const ownCommands: Readonly<Record<Subcommand, OwnCommandRun>> = {
  "lock-status": async (argv, io) =>
    await (await importLater<typeof import("./lock_status.ts")>(
      new URL("./lock_status.ts", import.meta.url),
    )).lockStatus(argv, io),
  "lock-list": async (argv, io) =>
    await (await importLater<typeof import("./lock_list.ts")>(
      new URL("./lock_list.ts", import.meta.url),
    )).lockList(argv, io),
  "lock-unlock": async (argv, io) =>
    await (await importLater<typeof import("./lock_unlock.ts")>(
      new URL("./lock_unlock.ts", import.meta.url),
    )).lockUnlock(argv, io),
  "lock-completion": async (argv, io) =>
    await (await importLater<typeof import("./completion.ts")>(
      new URL("./completion.ts", import.meta.url),
    )).lockCompletion(argv, io),
};
/** `__complete` (`complete.ts`). */
export const runComplete = async (words: string[], out: (line: string) => void): Promise<number> =>
  await (await importLater<typeof import("./complete.ts")>(
    new URL("./complete.ts", import.meta.url),
  )).runComplete(words, out);
/** helm-lock's `--help` (`help.ts`). */
export const mainHelp = async (): Promise<string> =>
  (await importLater<typeof import("./help.ts")>(
    new URL("./help.ts", import.meta.url),
  )).mainHelp();
export { runHelmDirectly } from "./passthrough.ts";
