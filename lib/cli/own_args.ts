/**
 * The command line of helm-lock's own commands (`lock-status`, `lock-list`, `lock-unlock`):
 * helm's global flags (namespace, context, kubeconfig, ...) as helm reads them, plus the
 * command's own few flags, and positionals. pflag's rules: `--x v`, `--x=v`, `-n v`, `-nv`,
 * combined booleans (`-A`), and everything after `--` positional.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import { type FlagUse, parseBool, splitInline } from "../helm/argv.ts";
import { flagTable } from "../helm/flags.ts";
import type { ClusterFlags } from "../kube/cluster_flags.ts";
import { clusterFlags } from "./args.ts";

/** A command's own flag: its long name, shorthand, and whether it takes a value. */
export interface OwnFlag {
  name: string;
  short?: string;
  value: boolean;
}

/** A parsed own command line. */
export interface OwnArgs {
  positionals: string[];
  /** Every flag, in order (global and own). */
  flags: FlagUse[];
  cluster: ClusterFlags;
  debug: boolean;
  /** The last value of an own value flag. */
  value(name: string): string | undefined;
  /** Whether an own boolean flag is on (the last use wins). */
  on(name: string): boolean;
}

/**
 * Parses `argv` (the words after the command's name).
 *
 * @param command The command, for messages.
 * @param usageLine The command's usage, for messages.
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for an unknown flag or a flag
 * without its value.
 */
export function parseOwnArgs(
  argv: readonly string[],
  command: string,
  usageLine: string,
  own: readonly OwnFlag[],
): OwnArgs {
  const usage = (message: string) => new HelmLockError(ExitCode.Usage, message);
  const global = flagTable("global");
  const kindOf = (name: string): "value" | "bool" | undefined => {
    const mine = own.find((f) => f.name === name);
    if (mine) return mine.value ? "value" : "bool";
    const kind = global.long.get(name);
    return kind === undefined ? undefined : kind === "value" ? "value" : "bool";
  };
  const shortName = (letter: string) =>
    own.find((f) => f.short === letter)?.name ?? global.short.get(letter);
  const unknown = (flag: string) =>
    usage(
      `Cannot run ${command} as ${
        JSON.stringify(flag)
      } is not one of its flags: expected "${usageLine}"`,
    );
  const noValue = (flag: string) =>
    usage(`Cannot run ${command} as ${flag} has no value: expected "${flag} <value>"`);

  const flags: FlagUse[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--lock-")) {
      // helmfile-style wrappers may append --lock-* flags to every call: they mean nothing here.
      const [, inline] = splitInline(arg);
      if (inline === undefined && !/^--lock-no-/.test(arg) && argv[i + 1] !== undefined) i++;
      continue;
    }
    if (arg.startsWith("--")) {
      const [name = "", inline] = splitInline(arg.slice(2));
      const kind = kindOf(name);
      if (kind === undefined) throw unknown(`--${name}`);
      let value = inline;
      const tokens = [arg];
      if (kind === "value" && value === undefined) {
        value = argv[++i];
        if (value === undefined) throw noValue(`--${name}`);
        tokens.push(value);
      }
      flags.push({ name, value, tokens });
      continue;
    }
    if (arg.startsWith("-") && arg !== "-") {
      const letters = arg.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const letter = letters[j] ?? "";
        const name = shortName(letter);
        if (name === undefined) throw unknown(`-${letter}`);
        if (kindOf(name) === "value") {
          let value = letters.slice(j + 1).replace(/^=/, "");
          if (value === "") {
            value = argv[++i] ?? "";
            if (i >= argv.length) throw noValue(`-${letter}`);
          }
          flags.push({ name, value, tokens: [`-${letter}`, value] });
          break;
        }
        flags.push({ name, value: undefined, tokens: [`-${letter}`] });
      }
      continue;
    }
    positionals.push(arg);
  }
  const last = (name: string) => flags.filter((f) => f.name === name).at(-1);
  const on = (name: string) => {
    const use = last(name);
    return use !== undefined && parseBool(use.value, `--${name}`, usage);
  };
  return {
    positionals,
    flags,
    cluster: clusterFlags(flags, usage),
    debug: on("debug"),
    value: (name) => last(name)?.value,
    on,
  };
}

/** helm's global flags from `flags`, as tokens for helm-lock's own helm calls. */
export function globalArgsOf(flags: readonly FlagUse[]): string[] {
  const global = flagTable("global");
  return flags.filter((f) => global.long.has(f.name) && f.name !== "help").flatMap((f) => f.tokens);
}

/** Where helm-lock's own commands write: results to stdout, progress to stderr. */
export interface CommandIO {
  /** One line of the command's result (stdout). */
  out(line: string): void;
  /** A progress line for people (stderr, `helm-lock:` prefixed). */
  info(line: string): void;
  /** Detail shown with `--debug` / `HELM_DEBUG`. */
  debug(line: string): void;
}

/** The `-o/--output` flag of `lock-status` and `lock-list`. */
export const OUTPUT_FLAG: OwnFlag = { name: "output", short: "o", value: true };

/**
 * The output format from `-o`: `table` (the default, for people) or `json`.
 *
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for another format.
 */
export function outputFormat(args: OwnArgs, command: string): "table" | "json" {
  const format = args.value("output") ?? "table";
  if (format !== "table" && format !== "json") {
    throw new HelmLockError(
      ExitCode.Usage,
      `Cannot run ${command} as -o ${JSON.stringify(format)} is not an output format: ` +
        `expected -o table or -o json`,
    );
  }
  return format;
}
