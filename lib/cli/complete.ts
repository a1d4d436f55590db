/**
 * `helm-lock __complete <words...> <word>`: shell completion in cobra's protocol, which helm
 * speaks too (`value<TAB>description` lines, then `:<directive>`). helm-lock's own commands and
 * flags are answered from their declarations; the rest is helm's own answer.
 *
 * @module
 */

import { helmCapture } from "../helm/exec.ts";
import { LOCKABLE_COMMANDS } from "../helm/flags.ts";
import { commandOf } from "./args.ts";
import { HELP_FLAG, OWN_COMMANDS, type OwnCommand, type OwnFlag } from "./help.ts";
import { LOCK_FLAG_TABLE, withoutLockFlags } from "./lock_flags.ts";

/** cobra's ShellCompDirectiveNoFileComp. */
const NO_FILE_COMP = 4;

/** Completion answers: candidates (`value` or `value\tdescription`) and cobra's directive. */
type Completions = { items: string[]; directive: number };

/** helm's answer to `helm __complete <words>`; none when helm cannot give one. */
async function helmCompletions(words: string[]): Promise<Completions> {
  const res = await helmCapture(["__complete", ...words]).catch(() => undefined);
  if (!res || res.code !== 0) return { items: [], directive: 0 };
  const lines = res.stdout.split("\n").filter((l) => l !== "");
  const last = lines.at(-1) ?? "";
  if (!/^:\d+$/.test(last)) return { items: lines, directive: 0 };
  return { items: lines.slice(0, -1), directive: Number(last.slice(1)) };
}

/** The flags matching `word`: long ones for `--x`, long and short for `-`, short for `-x`. */
function flagItems(flags: readonly OwnFlag[], word: string): string[] {
  const items = flags.flatMap((f) => {
    const long = `--${f.name}\t${f.description}`;
    const short = f.short ? [`-${f.short}\t${f.description}`] : [];
    return word === "-" ? [long, ...short] : word.startsWith("--") ? [long] : short;
  });
  return items.filter((i) => i.startsWith(word));
}

/** The flag of `flags` that `word` names (`--output`, `-o`). */
function flagNamed(flags: readonly OwnFlag[], word: string | undefined): OwnFlag | undefined {
  return flags.find((f) => word === `--${f.name}` || (f.short && word === `-${f.short}`));
}

const only = (items: string[], word: string) => items.filter((i) => i.startsWith(word));
const fixed = (items: string[]): Completions => ({ items, directive: NO_FILE_COMP });

/** The answers within one of helm-lock's own commands (`args` are the words after its name). */
async function ownCommand(command: OwnCommand, args: string[], word: string): Promise<Completions> {
  const flags = [...command.flags, HELP_FLAG];
  const valueFlag = flagNamed(flags, args.at(-1));
  if (valueFlag?.value) return fixed(only([...valueFlag.values ?? []], word));
  if (word.startsWith("-")) return fixed(flagItems(flags, word));
  if (commandOf(args, flags) || command.argument === "none") return fixed([]);
  if (command.argument === "shell") return fixed(only(["bash", "zsh", "fish"], word));
  // Release names (and helm's global flags' values) as helm completes them; never file names.
  const helm = await helmCompletions(["status", ...args, word]);
  return { items: helm.items, directive: helm.directive | NO_FILE_COMP };
}

/** The answers for `words` (after the program's name), the last (maybe empty) completed. */
async function complete(words: readonly string[]): Promise<Completions> {
  const word = words.at(-1) ?? "";
  const before = words.slice(0, -1);
  const lockFlag = flagNamed(LOCK_FLAG_TABLE, before.at(-1));
  if (lockFlag?.value) return fixed(only([...lockFlag.values ?? []], word));
  const found = commandOf(before);
  const first = found?.command;
  const own = OWN_COMMANDS.find((c) => c.name === first);
  if (own && found) return await ownCommand(own, before.slice(found.at + 1), word);
  // helm's answer for the words without helm-lock's --lock-* flags, which helm does not know.
  const helmWords = withoutLockFlags(before, (w) => flagNamed(LOCK_FLAG_TABLE, w)?.value ? 1 : 0);
  const helm = await helmCompletions([...helmWords, word]);
  const lockable = first === undefined || (LOCKABLE_COMMANDS as readonly string[]).includes(first);
  const ours = first === undefined && !word.startsWith("-")
    ? only(OWN_COMMANDS.map((c) => `${c.name}\t${c.summary}`), word)
    : lockable && word.startsWith("--")
    ? flagItems(LOCK_FLAG_TABLE, word)
    : [];
  return { items: [...ours, ...helm.items], directive: helm.directive };
}

/** Runs `__complete` with the words after it, printing cobra's answer to stdout. */
export async function runComplete(words: string[], out: (line: string) => void): Promise<number> {
  const { items, directive } = await complete(words.length === 0 ? [""] : words);
  for (const item of items) out(item);
  out(`:${directive}`);
  return 0;
}
