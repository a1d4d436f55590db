/**
 * The command line of helm-lock's own commands (`lock-status`, `lock-list`, `lock-unlock`,
 * `lock-completion`), read from each command's declaration (`help.ts`): helm's global flags
 * (namespace, context, kubeconfig, ...) as helm reads them, the command's own flags, and
 * positionals. pflag's rules: a boolean flag never takes the next word (`--force`,
 * `--force=false`), a value flag does (`--x v`, `--x=v`, `-xv`, `-x=v`), shorthands combine
 * (`-Ao json`), and everything after `--` is positional. helm-lock's `--lock-*` flags, which
 * helmfile-style wrappers append to every call, are checked and then ignored.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import { type FlagUse, parseBool, splitInline } from "../helm/argv.ts";
import { flagTable } from "../helm/flags.ts";
import type { ClusterFlags } from "../kube/cluster_flags.ts";
import { clusterFlags } from "./args.ts";
import { HELP_FLAG, type OwnCommand } from "./help.ts";
import { applyLockFlag, defaultLockSettings } from "./lock_flags.ts";
import { programName } from "./program.ts";

/** A parsed own command line. */
export interface OwnArgs {
  positionals: string[];
  /** Every flag, in order (global and own). */
  flags: FlagUse[];
  cluster: ClusterFlags;
  debug: boolean;
  /** `-h/--help` given: print the command's help and nothing else. */
  help: boolean;
  /** The last value of an own value flag. */
  value(name: string): string | undefined;
  /** Whether an own boolean flag is on (the last use wins). */
  on(name: string): boolean;
}

/**
 * Parses `argv` (the words after the command's name).
 *
 * @param program How helm-lock was invoked, for messages. @default {programName()}
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for an unknown flag, a flag
 * without its value, or a bad `--lock-*` value.
 */
export function parseOwnArgs(
  argv: readonly string[],
  command: OwnCommand,
  program: string = programName(),
): OwnArgs {
  const usage = (message: string) => new HelmLockError(ExitCode.Usage, message);
  const usageLine = `${program} ${command.name} ${command.usage}`;
  const own = [...command.flags, HELP_FLAG];
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
      `Cannot run ${command.name} as ${JSON.stringify(flag)} is not one of its flags: ` +
        `expected "${usageLine}" (${program} ${command.name} --help lists them)`,
    );
  const noValue = (flag: string) =>
    usage(`Cannot run ${command.name} as ${flag} has no value: expected "${flag} <value>"`);
  const unused = defaultLockSettings();
  const found = () => `found ${JSON.stringify(`${program} ${command.name} ${argv.join(" ")}`)}`;

  const flags: FlagUse[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--lock-")) {
      // helmfile-style wrappers append --lock-* flags to every call: checked as a helm command
      // would check them (a typo is still an error), then ignored. The table says which take
      // a value.
      i += applyLockFlag(unused, arg, argv[i + 1], JSON.stringify, found);
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
        const rest = letters.slice(j + 1);
        if (kindOf(name) === "value") {
          let value = rest.replace(/^=/, "");
          if (value === "") {
            if (i + 1 >= argv.length) throw noValue(`-${letter}`);
            value = argv[++i] ?? "";
          }
          flags.push({ name, value, tokens: [`-${letter}`, value] });
          break;
        }
        if (rest.startsWith("=")) {
          // pflag: `-A=false`, a boolean shorthand's value.
          flags.push({ name, value: rest.slice(1), tokens: [`-${letter}${rest}`] });
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
    help: on("help"),
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
  /**
   * One line of the command's result (stdout), made printable: text from the cluster or
   * helm never reaches the terminal raw. A JSON document counts as one line and stays valid.
   */
  out(line: string): void;
  /**
   * Lines of helm-lock's own making (help, a completion script, `-o yaml`, which quotes
   * unsafe values itself), printed as they are when they are safe (`printableBlock()`).
   */
  print(text: string): void;
  /** A progress line for people (stderr, `helm-lock:` prefixed). */
  info(line: string): void;
  /** Detail shown with `--debug` / `HELM_DEBUG`. */
  debug(line: string): void;
}

/** An output format of `-o/--output`. */
export type OutputFormat = "table" | "json" | "yaml";

/**
 * The output format from `-o`: `table` (the default, for people), `json` or `yaml`.
 *
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for another format.
 */
export function outputFormat(args: OwnArgs, command: OwnCommand): OutputFormat {
  const format = args.value("output") ?? "table";
  if (format !== "table" && format !== "json" && format !== "yaml") {
    throw new HelmLockError(
      ExitCode.Usage,
      `Cannot run ${command.name} as -o ${JSON.stringify(format)} is not an output format: ` +
        `expected -o table, -o json or -o yaml`,
    );
  }
  return format;
}

/**
 * The words of a command that takes one release name, or the usage error.
 *
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for none or more than one.
 */
export function oneRelease(args: OwnArgs, command: OwnCommand, program = programName()): string {
  const [release, extra] = args.positionals;
  if (release === undefined || extra !== undefined) {
    throw new HelmLockError(
      ExitCode.Usage,
      `Cannot run ${command.name} as it takes one release name: expected ` +
        `"${program} ${command.name} ${command.usage}", found ${JSON.stringify(args.positionals)}`,
    );
  }
  return release;
}
