/**
 * helm-lock's help texts, and the one declaration of each own command that its command line
 * (`own_args.ts`), its help and the shell completion are read from.
 *
 * @module
 */

import { VERSION } from "../version.ts";
import type { Subcommand } from "./args.ts";
import { flagUsage, LOCK_FLAG_TABLE } from "./lock_flags.ts";

/** A flag of one of helm-lock's own commands; `value` is its placeholder, none for a boolean. */
export interface OwnFlag {
  readonly name: string;
  readonly short?: string;
  readonly value?: string;
  readonly values?: readonly string[];
  readonly description: string;
}

/** One of helm-lock's own commands; `-h/--help` and helm's global flags come with each. */
export interface OwnCommand {
  readonly name: Subcommand;
  /** What follows the name on the USAGE line. */
  readonly usage: string;
  readonly summary: string;
  readonly about: string;
  readonly flags: readonly OwnFlag[];
  readonly argument: "release" | "shell" | "none";
}

const OUTPUT: OwnFlag = {
  name: "output",
  short: "o",
  value: "<format>",
  values: ["table", "json", "yaml"],
  description: "table (the default), or json or yaml (kubectl-like, versioned: docs/output.md)",
};

export const HELP_FLAG: OwnFlag = { name: "help", short: "h", description: "Show this help" };

export const LOCK_STATUS: OwnCommand = {
  name: "lock-status",
  usage: "<RELEASE> [-n NAMESPACE] [-o table|json|yaml]",
  summary: "Show who holds a release's lock, the queue behind it and the release's state",
  about: "Shows who holds the lock of a release, since when, its CI job, the jobs waiting " +
    'behind it, and the release\'s state as helm has it ("unknown: forbidden" when RBAC ' +
    "hides helm's release Secrets). Changes nothing.",
  flags: [OUTPUT],
  argument: "release",
};

export const LOCK_LIST: OwnCommand = {
  name: "lock-list",
  usage: "[-n NAMESPACE | -A] [-o table|json|yaml]",
  summary: "List the helm-lock locks of a namespace or of all namespaces",
  about: "Lists the helm-lock locks (Leases labelled app.kubernetes.io/managed-by=helm-lock) " +
    "of the namespace, or of all namespaces with -A. Changes nothing.",
  flags: [OUTPUT, {
    name: "all-namespaces",
    short: "A",
    description: "List the locks of all namespaces (needs list on leases cluster-wide)",
  }],
  argument: "none",
};

export const LOCK_UNLOCK: OwnCommand = {
  name: "lock-unlock",
  usage: "<RELEASE> [-n NAMESPACE] [--force]",
  summary: "Remove a release's lock whose holder is gone (or any, with --force)",
  about: "Removes the lock of a release whose holder is gone: it watches the Lease for one " +
    "lease duration and refuses (exit 1) if the holder still renews it. A lock that changed " +
    "hands meanwhile is never removed.",
  flags: [{
    name: "force",
    description: "Remove the lock at once, even of a live holder, which then stops its helm " +
      "(exit 4)",
  }],
  argument: "release",
};

export const LOCK_COMPLETION: OwnCommand = {
  name: "lock-completion",
  usage: "bash|zsh|fish",
  summary: "Print the shell completion script of the standalone helm-lock",
  about: "Prints the completion script of the standalone helm-lock for bash, zsh or fish: " +
    "helm-lock's own commands and flags, the rest from helm's own completion. Load it with " +
    "`source <(helm-lock lock-completion bash)` (bash, zsh) or " +
    "`helm-lock lock-completion fish | source`. The plugin needs none: helm completes " +
    "`helm lock` from the plugin's completion.yaml and plugin.complete.",
  flags: [],
  argument: "shell",
};

export const OWN_COMMANDS: readonly OwnCommand[] = [
  LOCK_STATUS,
  LOCK_LIST,
  LOCK_UNLOCK,
  LOCK_COMPLETION,
];

const WIDTH = 96;
const COLUMN = 29;

/** `text` in lines of at most {@linkcode WIDTH} characters, each after `indent`. */
function wrap(text: string, indent: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && indent + line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].map((l) => `${" ".repeat(indent)}${l}`);
}

/** An OPTIONS section's rows: the flag, then its description from column {@linkcode COLUMN}. */
function options(rows: ReadonlyArray<readonly [string, string]>): string {
  return rows.flatMap(([flag, text]) => {
    const [first = "", ...rest] = wrap(text, COLUMN);
    const head = `  ${flag}`;
    return head.length < COLUMN
      ? [`${head.padEnd(COLUMN)}${first.trimStart()}`, ...rest]
      : [head, first, ...rest];
  }).join("\n");
}

const GLOBAL_FLAGS =
  `  Cluster, namespace and identity are helm's: -n/--namespace, --kube-context, --kubeconfig,
  --kube-token, ... and HELM_NAMESPACE, HELM_KUBECONTEXT, KUBECONFIG, ...; --debug or
  HELM_DEBUG=true prints more.`;

export function commandHelp(command: OwnCommand, program: string): string {
  const flags = [...command.flags, HELP_FLAG].map((f) => [flagUsage(f), f.description] as const);
  return `${program} ${command.name}: ${command.summary}

USAGE
  ${program} ${command.name} ${command.usage}

${wrap(command.about, 2).join("\n")}

OPTIONS
${options(flags)}

${
    command.name === "lock-completion" ? "" : `${GLOBAL_FLAGS}

`
  }EXIT CODES
  0 done; 2 usage error; 6 the API server could not be reached; 7 it refused a request
  (the message names the verb and resource); 1 any other error
`;
}

/** helm-lock's own help (`--help` without a command). */
export function mainHelp(): string {
  const own = OWN_COMMANDS.map((c) => `  helm-lock ${c.name} ${c.usage}`).join("\n");
  return `helm-lock ${VERSION}: one helm operation per release at a time, and stuck releases recovered

USAGE
  helm lock <HELM_COMMAND> <RELEASE> [CHART] [FLAGS]      (as a Helm plugin)
  helm-lock <HELM_COMMAND> <RELEASE> [CHART] [FLAGS]      (standalone)
${own}

  HELM_COMMAND install, upgrade, rollback, uninstall or test takes the Lease
  helm-lock-<RELEASE> in the release namespace (waiting for it if another job holds it),
  recovers a release left pending-* or failed (install and upgrade only), runs helm, and
  releases the Lease. Everything except the --lock-* flags below reaches helm verbatim.

  Any other helm command (version, list, template, plugins, ...) runs helm as given,
  without a lock: helm-lock can stand in for helm (helmfile --helm-binary, PATH).

${OWN_COMMANDS.map((c) => wrap(`${c.name}: ${c.summary}.`, 2).join("\n")).join("\n")}
  Each takes -h/--help.

OPTIONS
${
    options([
      ...LOCK_FLAG_TABLE.map((f) => [flagUsage(f), f.description] as const),
      ["-h, --help", "Show this help (helm's own help: helm lock upgrade --help)"],
      ["--version", "Show helm-lock's version"],
    ])
  }

  Each --lock-* flag can also be set in the environment, --lock-x-y as HELM_LOCK_X_Y:
  HELM_LOCK_TIMEOUT=5m, HELM_LOCK_LEASE_DURATION=30s, HELM_LOCK_NO_RECOVER=true; a flag wins.

  Cluster, namespace and identity are helm's: -n/--namespace, --kube-context, --kubeconfig,
  --kube-token, ... and HELM_NAMESPACE, HELM_KUBECONTEXT, KUBECONFIG, ...; $HELM_BIN or
  helm on PATH runs the command. --debug or HELM_DEBUG=true prints more.

EXIT CODES
  helm's own exit code when helm ran
  2    usage error (also a bad HELM_LOCK_* value): nothing was written to the cluster
  3    the lock was not acquired within --lock-timeout: helm did not run
  4    the lock was lost while helm ran: helm was cut off from the API server and
       stopped with SIGTERM
  5    the release could not be recovered: helm did not run
  6    the Kubernetes API server could not be reached
  7    the API server refused a request (authentication or RBAC)
  8    superseded by a newer waiting job, or outdated by --lock-order-key: helm did not run
  127  helm cannot be started ($HELM_BIN or helm on PATH): found before the lock was taken
  1    any other error
  130, 143  interrupted by SIGINT, SIGTERM (forwarded to helm; the lock is released;
            a third signal kills helm)
`;
}
