/**
 * The command line of helm-lock's own commands, read from each one's declaration (`help.ts`)
 * by pflag's rules. `--lock-*` flags, which helmfile-style wrappers append to every call, are
 * checked as a helm command would check them (a typo is still an error), then ignored.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import type { Reporter } from "../report.ts";
import { type FlagUse, parseBool, splitInline } from "../helm/argv.ts";
import { flagTable } from "../helm/flags.ts";
import type { ClusterFlags } from "../kube/cluster_flags.ts";
import { connect } from "../kube/connection.ts";
import { kubeClient } from "../kube/rest.ts";
import { clusterFlags, programName } from "./args.ts";
import { commandHelp, HELP_FLAG, type OwnCommand } from "./help.ts";
import { applyLockFlag, defaultLockSettings } from "./lock_flags.ts";

export interface OwnArgs {
  positionals: string[];
  cluster: ClusterFlags;
  /** helm's global flags as given, for helm-lock's own helm calls. */
  globalArgs: string[];
  debug: boolean;
  /** Whether a boolean flag is on (the last use wins). */
  on(name: string): boolean;
  /** The usage error for wrong positionals: the command `takes` ("one release name"). */
  misused(takes: string): HelmLockError;
  /** The `-o` format. @throws {HelmLockError} With {@linkcode ExitCode.Usage} for another. */
  format(): "table" | "json" | "yaml";
}

/**
 * Parses `argv` (the words after the command's name), or prints the command's help and
 * returns `undefined` when `-h/--help` asks for it.
 *
 * @param program How the user invoked helm-lock, for messages. @default {programName()}
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for an unknown flag, a flag
 * without its value, or a bad `--lock-*` value.
 */
export function ownArgs(
  argv: readonly string[],
  command: OwnCommand,
  io: CommandIO,
  program: string = programName(),
): OwnArgs | undefined {
  const usage = (message: string) => new HelmLockError(ExitCode.Usage, message);
  const usageLine = `"${program} ${command.name} ${command.usage}"`;
  const own = [...command.flags, HELP_FLAG];
  const global = flagTable("global");
  const takesValue = (name: string): boolean | undefined => {
    const mine = own.find((f) => f.name === name);
    const kind = global.long.get(name);
    return mine ? Boolean(mine.value) : kind === undefined ? undefined : kind === "value";
  };
  const unknown = (flag: string) =>
    usage(
      `Cannot run ${command.name} as ${JSON.stringify(flag)} is not one of its flags: ` +
        `expected ${usageLine} (${program} ${command.name} --help lists them)`,
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
      i += applyLockFlag(unused, arg, argv[i + 1], JSON.stringify, found);
    } else if (arg.startsWith("--")) {
      const [name = "", inline] = splitInline(arg.slice(2));
      const takes = takesValue(name);
      if (takes === undefined) throw unknown(`--${name}`);
      if (!takes || inline !== undefined) {
        flags.push({ name, value: inline, tokens: [arg] });
        continue;
      }
      const next = argv[++i];
      if (next === undefined) throw noValue(`--${name}`);
      flags.push({ name, value: next, tokens: [arg, next] });
    } else if (arg.startsWith("-") && arg !== "-") {
      const letters = arg.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const letter = letters[j] ?? "";
        const name = own.find((f) => f.short === letter)?.name ?? global.short.get(letter);
        if (name === undefined) throw unknown(`-${letter}`);
        const rest = letters.slice(j + 1);
        if (takesValue(name)) {
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
    } else positionals.push(arg);
  }
  const last = (name: string) => flags.filter((f) => f.name === name).at(-1);
  const on = (name: string) => {
    const use = last(name);
    return use !== undefined && parseBool(use.value, `--${name}`, usage);
  };
  const cluster = clusterFlags(flags, usage);
  const debug = on("debug");
  if (on("help")) return void io.print(commandHelp(command, program));
  return {
    positionals,
    cluster,
    globalArgs: flags.filter((f) => global.long.has(f.name) && f.name !== "help")
      .flatMap((f) => f.tokens),
    debug,
    on,
    misused: (takes) =>
      usage(
        `Cannot run ${command.name} as it takes ${takes}: expected ${usageLine}, ` +
          `found ${JSON.stringify(positionals)}`,
      ),
    format: () => {
      const format = last("output")?.value ?? "table";
      if (format === "table" || format === "json" || format === "yaml") return format;
      throw usage(
        `Cannot run ${command.name} as -o ${JSON.stringify(format)} is not an output format: ` +
          `expected -o table, -o json or -o yaml`,
      );
    },
  };
}

/** The API server of an own command: one connection for its few requests. */
export function connectFor(args: OwnArgs, io: CommandIO) {
  const conn = connect(args.cluster);
  const client = kubeClient(conn);
  io.debug(`API server ${conn.server} as ${conn.user}`);
  return { conn, client };
}

/** Where helm-lock's own commands write: results to stdout, progress to stderr. */
export interface CommandIO extends Omit<Reporter, "event"> {
  /** One line of the result (stdout), made printable; a JSON document counts as one line. */
  out(line: string): void;
  /** Text of helm-lock's own making (help, a script, `-o yaml`), printed as it is when safe. */
  print(text: string): void;
}
