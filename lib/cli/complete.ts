/**
 * `helm-lock __complete <words...> <word being completed>`: the shell completion's answers, in
 * cobra's `__complete` protocol, which helm speaks too: one `value<TAB>description` per line,
 * then `:<directive>`. Three callers: the scripts of `helm-lock lock-completion` (`completion.ts`),
 * the plugin's `plugin.complete` (helm runs it for `helm lock ...` with the words after
 * `helm lock`, helm's global flags taken out), and helm's own completion script when helm-lock
 * stands in for helm (`helm __complete ...`). helm-lock's own commands and `--lock-*` flags are
 * answered here, from their declarations; everything else is helm's own answer
 * (`helm __complete`), so a release name, a chart or a flag of helm completes as with helm.
 *
 * @module
 */

import { helmCapture } from "../helm/exec.ts";
import { flagTable, LOCKABLE_COMMANDS } from "../helm/flags.ts";
import { HELP_FLAG, OWN_COMMANDS, type OwnCommand, type OwnFlag } from "./help.ts";
import { LOCK_FLAG_TABLE } from "./lock_flags.ts";

/** cobra's ShellCompDirective bits. */
export const Directive = { Error: 1, NoSpace: 2, NoFileComp: 4 } as const;

/** Completion answers: candidates (`value` or `value\tdescription`) and cobra's directive. */
export interface Completions {
  items: string[];
  directive: number;
}

/** helm's answer to `helm __complete <words>`; none when helm cannot give one. */
async function helmCompletions(words: string[]): Promise<Completions> {
  const res = await helmCapture(["__complete", ...words]).catch(() => undefined);
  if (!res || res.code !== 0) return { items: [], directive: 0 };
  const lines = res.stdout.split("\n").filter((l) => l !== "");
  const last = lines.at(-1) ?? "";
  if (!/^:\d+$/.test(last)) return { items: lines, directive: 0 };
  return { items: lines.slice(0, -1), directive: Number(last.slice(1)) };
}

const LOCK_FLAGS: OwnFlag[] = LOCK_FLAG_TABLE.map((f) => ({
  name: f.name,
  description: f.description,
  ...(f.value === "bool" ? {} : { value: f.placeholder ?? "<value>" }),
  ...(f.values ? { values: f.values } : {}),
}));

/** The flags matching `word`: long ones for `--x`, long and short for `-`, short for `-x`. */
function flagItems(flags: readonly OwnFlag[], word: string): string[] {
  const items = flags.flatMap((f) => {
    const long = `--${f.name}\t${f.description}`;
    const short = f.short ? [`-${f.short}\t${f.description}`] : [];
    return word === "-" ? [long, ...short] : word.startsWith("--") ? [long] : short;
  });
  return items.filter((i) => i.startsWith(word));
}

/** Which words are flags with their values, and which are positionals. */
function positionalsOf(words: readonly string[], valueFlags: ReadonlySet<string>): string[] {
  const positionals: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? "";
    if (w === "--") return [...positionals, ...words.slice(i + 1)];
    if (w.startsWith("-") && w !== "-") {
      if (!w.includes("=") && valueFlags.has(w)) i++;
      continue;
    }
    positionals.push(w);
  }
  return positionals;
}

/** The flags (`--name`, `-x`) that take the next word as their value. */
function valueFlagNames(own: readonly OwnFlag[]): Set<string> {
  const global = flagTable("global");
  const names = new Set<string>();
  for (const [name, kind] of global.long) if (kind === "value") names.add(`--${name}`);
  for (const [letter, name] of global.short) {
    if (global.long.get(name) === "value") names.add(`-${letter}`);
  }
  for (const f of own) {
    if (!f.value) continue;
    names.add(`--${f.name}`);
    if (f.short) names.add(`-${f.short}`);
  }
  return names;
}

/** The flag of `flags` that `word` names (`--output`, `-o`). */
function flagNamed(flags: readonly OwnFlag[], word: string | undefined): OwnFlag | undefined {
  return flags.find((f) => word === `--${f.name}` || (f.short && word === `-${f.short}`));
}

const only = (items: string[], word: string) => items.filter((i) => i.startsWith(word));
const fixed = (items: string[]): Completions => ({ items, directive: Directive.NoFileComp });

/** The answers within one of helm-lock's own commands (`args` are the words after its name). */
async function ownCommand(command: OwnCommand, args: string[], word: string): Promise<Completions> {
  const flags = [...command.flags, HELP_FLAG];
  const valueFlag = flagNamed(flags, args.at(-1));
  if (valueFlag?.value) return fixed(only([...valueFlag.values ?? []], word));
  if (word.startsWith("-")) return fixed(flagItems(flags, word));
  const positionals = positionalsOf(args, valueFlagNames([...flags, ...LOCK_FLAGS]));
  if (positionals.length > 0 || command.argument === "none") return fixed([]);
  if (command.argument === "shell") return fixed(only(["bash", "zsh", "fish"], word));
  // Release names (and the values of helm's global flags) as helm completes `helm status`'s;
  // never file names.
  const helm = await helmCompletions(["status", ...args, word]);
  return { items: helm.items, directive: helm.directive | Directive.NoFileComp };
}

/**
 * The answers for `words`, the last one being the word completed.
 *
 * @param words The words after the program's name; the last may be empty.
 */
export async function complete(words: readonly string[]): Promise<Completions> {
  const word = words.at(-1) ?? "";
  const before = words.slice(0, -1);
  const lockFlag = flagNamed(LOCK_FLAGS, before.at(-1));
  if (lockFlag?.value) return fixed(only([...lockFlag.values ?? []], word));
  const valueFlags = valueFlagNames(LOCK_FLAGS);
  const [first] = positionalsOf(before, valueFlags);
  const own = OWN_COMMANDS.find((c) => c.name === first);
  if (own) return await ownCommand(own, before.slice(before.indexOf(own.name) + 1), word);
  // helm's answer for the words without helm-lock's --lock-* flags, which helm does not know.
  const helmWords: string[] = [];
  for (let i = 0; i < before.length; i++) {
    const w = before[i] ?? "";
    if (w === "--") {
      helmWords.push(...before.slice(i));
      break;
    }
    if (!w.startsWith("--lock-")) helmWords.push(w);
    else if (!w.includes("=") && valueFlags.has(w)) i++;
  }
  const helm = await helmCompletions([...helmWords, word]);
  const lockable = first === undefined || (LOCKABLE_COMMANDS as readonly string[]).includes(first);
  const ours = first === undefined && !word.startsWith("-")
    ? only(OWN_COMMANDS.map((c) => `${c.name}\t${c.summary}`), word)
    : lockable && word.startsWith("--")
    ? flagItems(LOCK_FLAGS, word)
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
