/**
 * Reads helm's command line as helm's pflag does, with the tables of `flags.ts`, never changing
 * a token: a value-taking flag consumes the next argument even when it starts with `-`, or takes
 * it inline (`-nprod`, `-n=prod`); shorthands combine (`-in prod` is `--install -n prod`);
 * booleans and optional-value flags never consume the next argument (Helm 4 `--wait watcher` is
 * `--wait` and the positional `watcher`); positionals after `--` still count; a flag neither helm
 * version documents is boolean unless written `--x=y`.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import {
  COMMAND_ALIASES,
  type FlagTable,
  flagTable,
  LOCKABLE_COMMANDS,
  type LockableCommand,
} from "./flags.ts";

/** One flag as helm reads it. */
export interface FlagUse {
  /** The long name (`namespace` for `-n`), or the letter of an unknown shorthand. */
  name: string;
  /** The value, inline or from the next argument; `undefined` for a bare boolean. */
  value: string | undefined;
  /** The argv tokens to repeat this flag on its own. */
  tokens: string[];
}

/** A helm command line, read. */
interface ScannedArgs {
  /** The argv for helm: every token in order, except those `ownFlag` took. */
  helmArgs: string[];
  flags: FlagUse[];
  /** The first positional: the helm command, as written. */
  command?: string;
  /** The positionals after the command. */
  positionals: string[];
}

/**
 * Reads `argv` as helm would; tokens starting with `--lock-` before a lone `--` go to `ownFlag`,
 * which returns how many tokens after it it consumed (0 or 1), and are left out of `helmArgs`.
 *
 * @param found Says what was found, for the message of a flag without its value.
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} when a flag lacks its value.
 */
export function scanHelmArgs(
  argv: readonly string[],
  ownFlag: (arg: string, next: string | undefined) => number,
  found: () => string,
): ScannedArgs {
  const helmArgs: string[] = [];
  const flags: FlagUse[] = [];
  const positionals: string[] = [];
  let command: string | undefined;
  let table: FlagTable = flagTable("global");

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      helmArgs.push(...argv.slice(i));
      for (const rest of argv.slice(i + 1)) {
        if (command === undefined) command = rest;
        else positionals.push(rest);
      }
      break;
    }
    if (arg.startsWith("--lock-")) {
      i += ownFlag(arg, argv[i + 1]);
      continue;
    }
    if (arg.startsWith("--")) {
      const [name = "", inline] = splitInline(arg.slice(2));
      const tokens = [arg];
      let value = inline;
      if (inline === undefined && table.long.get(name) === "value") {
        value = argv[++i];
        if (value === undefined) throw missingValue(`--${name}`, found());
        tokens.push(value);
      }
      helmArgs.push(...tokens);
      flags.push({ name, value, tokens });
      continue;
    }
    if (arg.startsWith("-") && arg !== "-") {
      helmArgs.push(arg);
      const letters = arg.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const letter = letters[j] ?? "";
        // Unknown shorthands are assumed boolean, as unknown long flags are.
        const name = table.short.get(letter) ?? letter;
        const combined = j > 0;
        // pflag: "-n=x" is x, but "-n=" is "=" (the rest of the token, as in "-nx").
        if (letters[j + 1] === "=" && letters.length - j > 2) {
          const value = letters.slice(j + 2);
          flags.push({ name, value, tokens: combined ? [`-${letter}`, value] : [arg] });
          break;
        }
        if (table.long.get(name) === "value") {
          let value = letters.slice(j + 1);
          let tokens = [arg];
          if (value === "") {
            value = argv[++i] ?? "";
            if (i >= argv.length) throw missingValue(`-${letter}`, found());
            helmArgs.push(value);
            tokens = [arg, value];
          }
          flags.push({ name, value, tokens: combined ? [`-${letter}`, value] : tokens });
          break;
        }
        flags.push({ name, value: undefined, tokens: [`-${letter}`] });
      }
      continue;
    }
    helmArgs.push(arg);
    if (command === undefined) {
      command = arg;
      const canonical = canonicalCommand(arg);
      if (canonical) table = flagTable(canonical);
    } else {
      positionals.push(arg);
    }
  }
  const scanned: ScannedArgs = { helmArgs, flags, positionals };
  if (command !== undefined) scanned.command = command;
  return scanned;
}

/** The canonical name of a command helm-lock locks (`delete` is `uninstall`), if it is one. */
export function canonicalCommand(command: string): LockableCommand | undefined {
  return (LOCKABLE_COMMANDS as readonly string[]).includes(command)
    ? command as LockableCommand
    : COMMAND_ALIASES[command];
}

/** `name=value` as `[name, value]`; `[name, undefined]` without `=`. */
export function splitInline(text: string): [string, string | undefined] {
  const at = text.indexOf("=");
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/**
 * Go's strconv.ParseBool, which pflag uses for `--flag=value` of a boolean; a bare flag
 * (`undefined`) is `true`.
 *
 * @throws The error `usage` makes, when `value` is not a boolean.
 */
export function parseBool(
  value: string | undefined,
  flag: string,
  usage: (message: string) => HelmLockError,
): boolean {
  if (value === undefined) return true;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw usage(
    `Cannot use ${flag}=${value} as the value is not a boolean: expected ` +
      `${flag}=true or ${flag}=false`,
  );
}

function missingValue(flag: string, found: string): HelmLockError {
  return new HelmLockError(
    ExitCode.Usage,
    `Cannot run as ${flag} has no value: expected "${flag} <value>", ${found}`,
  );
}
