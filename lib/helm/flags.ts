/**
 * Which helm flags take a value, for the commands helm-lock wraps: in `helm upgrade --namespace
 * prod my-rel` the word `prod` is a flag value, in `helm upgrade --wait my-rel` the word
 * `my-rel` is the release. Copied from `helm <command> --help` of Helm 3.17.2 and 4.1.4
 * (`tests/helm/flags_test.ts` compares them with the real binaries).
 *
 * In the tables, `name` is a boolean flag, `name=` takes a value (`--name value` or
 * `--name=value`), `name[=]` has an optional value that only follows `=` (pflag's
 * `NoOptDefVal`, e.g. Helm 4 `--wait[=watcher]`), and `x/name` adds the shorthand `-x`.
 *
 * @module
 */

/** Whether a flag consumes the argument after it: never (`bool`, `optional`) or always. */
export type FlagKind = "bool" | "value" | "optional";

type HelmMajor = 3 | 4;

/** The helm commands helm-lock takes a lock for, by their canonical name. */
export const LOCKABLE_COMMANDS = ["install", "upgrade", "rollback", "uninstall", "test"] as const;

export type LockableCommand = typeof LOCKABLE_COMMANDS[number];

/** The flags of one helm command (or helm's global flags): by long name, and letter to name. */
export interface FlagTable {
  readonly long: ReadonlyMap<string, FlagKind>;
  readonly short: ReadonlyMap<string, string>;
}

/** Aliases, as `helm <command> --help` lists them (cobra's prefix matching is off in helm). */
export const COMMAND_ALIASES: Readonly<Record<string, LockableCommand>> = {
  del: "uninstall",
  delete: "uninstall",
  un: "uninstall",
};

type TableName = "global" | LockableCommand;

// Flags shared by install and upgrade (chart lookup, values, rendering) in both versions.
const CHART_AND_VALUES = `
  ca-file= cert-file= dependency-update description= devel disable-openapi-validation
  enable-dns h/help hide-notes hide-secret insecure-skip-tls-verify key-file= keyring=
  l/labels= no-hooks o/output= pass-credentials password= plain-http post-renderer=
  post-renderer-args= render-subchart-notes repo= set= set-file= set-json= set-literal=
  set-string= skip-crds skip-schema-validation take-ownership timeout= username= f/values=
  verify version= wait-for-jobs create-namespace
`;

const HELM3_GLOBAL = `
  burst-limit= debug h/help kube-apiserver= kube-as-group= kube-as-user= kube-ca-file=
  kube-context= kube-insecure-skip-tls-verify kube-tls-server-name= kube-token= kubeconfig=
  n/namespace= qps= registry-config= repository-cache= repository-config=
`;

const SPECS: Readonly<Record<HelmMajor, Readonly<Record<TableName, string>>>> = {
  3: {
    global: HELM3_GLOBAL,
    install: `${CHART_AND_VALUES} atomic dry-run[=] force g/generate-name name-template= replace
      wait`,
    upgrade: `${CHART_AND_VALUES} atomic cleanup-on-fail dry-run[=] force history-max=
      i/install reset-then-reuse-values reset-values reuse-values wait`,
    rollback: `cleanup-on-fail dry-run force h/help history-max= no-hooks recreate-pods
      timeout= wait wait-for-jobs`,
    uninstall: `cascade= description= dry-run h/help ignore-not-found keep-history no-hooks
      timeout= wait`,
    test: `filter= h/help hide-notes logs timeout=`,
  },
  4: {
    global: `${HELM3_GLOBAL} color= colour= content-cache=`,
    // Helm 4 dropped --atomic and --force for --rollback-on-failure and --force-replace,
    // and --wait became a strategy whose value may only follow "=" (--wait=watcher).
    install: `${CHART_AND_VALUES} dry-run[=] force-conflicts force-replace g/generate-name
      name-template= replace rollback-on-failure server-side wait[=]`,
    // --server-side is a boolean for install but a string ("true", "false", "auto") for
    // upgrade and rollback, so `upgrade --server-side true my-rel` is valid.
    upgrade: `${CHART_AND_VALUES} cleanup-on-fail dry-run[=] force-conflicts force-replace
      history-max= i/install reset-then-reuse-values reset-values reuse-values
      rollback-on-failure server-side= wait[=]`,
    rollback: `cleanup-on-fail dry-run[=] force-conflicts force-replace h/help history-max=
      no-hooks server-side= timeout= wait[=] wait-for-jobs`,
    uninstall: `cascade= description= dry-run h/help ignore-not-found keep-history no-hooks
      timeout= wait[=]`,
    test: `filter= h/help logs timeout=`,
  },
};

/** The flags of `command` (or `"global"`) as one helm major version documents them. */
function helmFlags(major: HelmMajor, command: TableName): FlagTable {
  const long = new Map<string, FlagKind>();
  const short = new Map<string, string>();
  for (const word of SPECS[major][command].split(/\s+/).filter(Boolean)) {
    const match = /^(?:(\w)\/)?([\w-]+)(=|\[=\])?$/.exec(word);
    if (!match) throw new TypeError(`Cannot read the flag table entry "${word}"`);
    const [, letter, name = "", suffix] = match;
    long.set(name, suffix === "=" ? "value" : suffix === "[=]" ? "optional" : "bool");
    if (letter) short.set(letter, name);
  }
  return { long, short };
}

const UNION_CACHE = new Map<TableName, FlagTable>();

/**
 * The flags a command (or `"global"`: before the command) accepts under Helm 3 or Helm 4,
 * global flags included. helm-lock does not know which helm runs until it runs it, and the two
 * versions never disagree on whether a flag consumes the next argument (the tests check this),
 * so one union serves.
 */
export function flagTable(command: TableName): FlagTable {
  const cached = UNION_CACHE.get(command);
  if (cached) return cached;
  const long = new Map<string, FlagKind>();
  const short = new Map<string, string>();
  const names: TableName[] = command === "global" ? ["global"] : ["global", command];
  for (const table of names.flatMap((name) => [helmFlags(3, name), helmFlags(4, name)])) {
    for (const [name, kind] of table.long) {
      // A flag that takes a separate value in one version must consume it in the union:
      // the other version does not know the flag at all and fails on it anyway.
      if (long.get(name) !== "value") long.set(name, kind);
    }
    for (const [letter, name] of table.short) short.set(letter, name);
  }
  UNION_CACHE.set(command, { long, short });
  return { long, short };
}

/** Whether a flag (long name, e.g. `namespace`) is one of helm's global flags. */
export function isGlobalFlag(name: string): boolean {
  return flagTable("global").long.has(name);
}
