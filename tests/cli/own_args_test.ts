import assert from "node:assert/strict";
import { type CommandIO, ownArgs } from "../../lib/cli/own_args.ts";
import { LOCK_LIST, LOCK_STATUS, LOCK_UNLOCK, type OwnCommand } from "../../lib/cli/help.ts";
import { LOCK_FLAG_TABLE } from "../../lib/cli/lock_flags.ts";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";

let printed: string[] = [];
const io: CommandIO = {
  out: () => {},
  print: (t) => printed.push(t),
  info: () => {},
  debug: () => {},
};
const parse = (command: OwnCommand, argv: string[]) => {
  printed = [];
  return ownArgs(argv, command, io, "helm-lock");
};

// pflag's rules, as helm's own commands read their flags.
const CASES: Array<
  [OwnCommand, string[], { positionals: string[]; check?: Record<string, unknown> }]
> = [
  // issue 29: a boolean --lock-* flag took the next word as its value.
  [LOCK_STATUS, ["web", "--lock-superseded-ok", "-n", "prod"], {
    positionals: ["web"],
    check: { namespace: "prod" },
  }],
  [LOCK_STATUS, ["--lock-no-fence", "web", "--lock-no-recover", "-n", "prod"], {
    positionals: ["web"],
    check: { namespace: "prod" },
  }],
  [LOCK_STATUS, ["--lock-superseded-ok=true", "web"], { positionals: ["web"] }],
  // Value --lock-* flags take the next word, or theirs after "=".
  [LOCK_STATUS, ["--lock-timeout", "5m", "web", "--lock-queue=newest"], { positionals: ["web"] }],
  [LOCK_STATUS, ["web", "-ojson"], { positionals: ["web"], check: { output: "json" } }],
  [LOCK_STATUS, ["web", "-o=yaml"], { positionals: ["web"], check: { output: "yaml" } }],
  [LOCK_STATUS, ["web", "--output=json", "-o", "table"], {
    positionals: ["web"],
    check: { output: "table" },
  }],
  [LOCK_STATUS, ["-nprod", "web"], { positionals: ["web"], check: { namespace: "prod" } }],
  [LOCK_STATUS, ["--", "-web"], { positionals: ["-web"] }],
  [LOCK_LIST, ["-Ao", "json"], { positionals: [], check: { all: true, output: "json" } }],
  [LOCK_LIST, ["-A=false"], { positionals: [], check: { all: false } }],
  [LOCK_UNLOCK, ["web", "--force"], { positionals: ["web"], check: { force: true } }],
  [LOCK_UNLOCK, ["--force=false", "web"], { positionals: ["web"], check: { force: false } }],
  // A boolean flag never takes the next word.
  [LOCK_UNLOCK, ["--force", "web"], { positionals: ["web"], check: { force: true } }],
  [LOCK_UNLOCK, ["web", "--debug", "--kube-context", "kind"], {
    positionals: ["web"],
    check: { debug: true, context: "kind" },
  }],
];

for (const [command, argv] of [[LOCK_LIST, ["--help"]], [LOCK_STATUS, ["web", "-h"]]] as const) {
  Deno.test(`ownArgs() prints the help of ${command.name} ${argv.join(" ")}, and nothing else`, () => {
    assert.equal(parse(command, [...argv]), undefined);
    assert.equal(printed.length, 1);
    assert.match(printed[0]!, new RegExp(`^helm-lock ${command.name}: [^]*\nUSAGE\n`));
  });
}

for (const [command, argv, expected] of CASES) {
  Deno.test(`ownArgs() reads ${command.name} ${argv.join(" ")}`, () => {
    const args = parse(command, argv);
    assert.ok(args);
    assert.deepEqual(args.positionals, expected.positionals);
    const seen: Record<string, unknown> = {
      namespace: args.cluster.namespace,
      context: args.cluster.kubeContext,
      output: args.format(),
      all: args.on("all-namespaces"),
      force: args.on("force"),
      debug: args.debug,
    };
    for (const [key, value] of Object.entries(expected.check ?? {})) {
      assert.equal(seen[key], value, key);
    }
  });
}

Deno.test("ownArgs() knows which --lock-* flags are boolean from LOCK_FLAG_TABLE", () => {
  for (const flag of LOCK_FLAG_TABLE) {
    const value = flag.type === "bool"
      ? "web"
      : flag.values?.[0] ?? (flag.type === "duration" ? "5m" : "7");
    const args = parse(LOCK_STATUS, [`--${flag.name}`, value, "web"]);
    assert.deepEqual(args?.positionals, flag.type === "bool" ? ["web", "web"] : ["web"], flag.name);
  }
});

const ERRORS: Array<[OwnCommand, string[], RegExp]> = [
  [
    LOCK_UNLOCK,
    ["app", "--frce"],
    /^Cannot run lock-unlock as "--frce" is not one of its flags: expected "helm-lock lock-unlock <RELEASE> \[-n NAMESPACE\] \[--force\]" \(helm-lock lock-unlock --help lists them\)$/,
  ],
  [LOCK_STATUS, ["app", "--force"], /"--force" is not one of its flags/],
  [LOCK_LIST, ["-x"], /"-x" is not one of its flags/],
  [
    LOCK_STATUS,
    ["app", "-o"],
    /^Cannot run lock-status as -o has no value: expected "-o <value>"$/,
  ],
  [LOCK_STATUS, ["app", "--output"], /--output has no value/],
  [LOCK_STATUS, ["app", "--lock-timeout"], /--lock-timeout has no value/],
  [LOCK_STATUS, ["app", "--lock-timeout", "5x"], /--lock-timeout as "5x" has an unknown unit/],
  [LOCK_STATUS, ["app", "--lock-typo"], /"--lock-typo" is not a helm-lock flag/],
  [LOCK_UNLOCK, ["app", "--force=maybe"], /--force=maybe as the value is not a boolean/],
];

for (const [command, argv, message] of ERRORS) {
  Deno.test(`ownArgs() refuses ${command.name} ${argv.join(" ")} with exit 2`, () => {
    assert.throws(() => {
      parse(command, argv)?.on("force");
    }, (err: unknown) => {
      assert.ok(err instanceof HelmLockError);
      assert.equal(err.code, ExitCode.Usage);
      assert.match(err.message, message);
      return true;
    });
  });
}
