import { ADVERSARIAL, assertLinear } from "../support/linear.ts";
import assert from "node:assert/strict";
import { type Invocation, parseArgs, programName } from "../../lib/cli/args.ts";
import { OWN_COMMANDS } from "../../lib/cli/help.ts";
import { LOCK_FLAG_TABLE } from "../../lib/cli/lock_flags.ts";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";

interface Case {
  /** The command line after `helm lock`, as a shell would split it. */
  args: string[];
  release: string;
  namespace?: string;
  /** What helm receives; the same as `args` when omitted. */
  helmArgs?: string[];
  install?: boolean;
  chart?: string;
  command?: Invocation["command"];
  /** Checked when given. */
  globalArgs?: string[];
  lockTimeoutMs?: number;
  recover?: boolean;
  fence?: boolean;
  debug?: boolean;
  check?: (invocation: Invocation) => void;
}

// Command lines from the helm docs, chart READMEs and CI configs (GitLab, GitHub Actions,
// Argo/Jenkins scripts), with what helm-lock must make of them.
/** helm's cluster flags, each shape of them: a case passes them to helm as they were given. */
const CLUSTER_FLAGS = [
  "--kubeconfig",
  "/etc/kube/config",
  "--kube-token",
  "t0ken",
  "--kube-apiserver=https://10.0.0.1:6443",
  "--kube-ca-file",
  "/etc/kube/ca.crt",
  "--kube-insecure-skip-tls-verify=false",
  "--kube-tls-server-name",
  "api.internal",
];

const CASES: Case[] = [
  // helm docs: helm upgrade --install
  { args: ["upgrade", "--install", "my-release", "./chart"], release: "my-release", install: true },
  {
    args: ["upgrade", "-i", "my-nginx", "bitnami/nginx", "--version", "15.1.0"],
    release: "my-nginx",
    chart: "bitnami/nginx",
    install: true,
  },
  {
    args: ["install", "my-nginx", "bitnami/nginx", "--namespace", "web", "--create-namespace"],
    release: "my-nginx",
    namespace: "web",
    install: true,
    globalArgs: ["--namespace", "web"],
  },
  // GitLab Auto DevOps style: flags first, values files repeated
  {
    args: [
      "upgrade",
      "--install",
      "--wait",
      "--timeout",
      "10m0s",
      "review-app",
      "./charts/app",
      "-f",
      "values.yaml",
      "-f",
      "values-prod.yaml",
      "--values",
      "values-eu.yaml",
    ],
    release: "review-app",
    chart: "./charts/app",
    install: true,
  },
  // --set with commas and "=" inside the value
  {
    args: ["upgrade", "my-app", "./chart", "--set", "image.tag=v2,replicaCount=3"],
    release: "my-app",
    chart: "./chart",
  },
  {
    args: ["upgrade", "my-app", "./chart", "--set-string", "config.cmd=a=b", "--set", "x=1=2"],
    release: "my-app",
  },
  // boolean before the release
  { args: ["upgrade", "--wait", "my-rel", "./chart"], release: "my-rel", chart: "./chart" },
  { args: ["upgrade", "--atomic", "--cleanup-on-fail", "my-rel", "./c"], release: "my-rel" },
  // namespace in every spelling
  {
    args: ["upgrade", "-nprod", "my-rel", "./chart"],
    release: "my-rel",
    namespace: "prod",
    globalArgs: ["-nprod"],
  },
  {
    args: ["upgrade", "--namespace=prod", "my-rel", "./chart"],
    release: "my-rel",
    namespace: "prod",
    globalArgs: ["--namespace=prod"],
  },
  {
    args: ["upgrade", "-n=prod", "my-rel", "./chart"],
    release: "my-rel",
    namespace: "prod",
    globalArgs: ["-n=prod"],
  },
  {
    args: ["upgrade", "--namespace", "prod", "my-rel", "./chart"],
    release: "my-rel",
    namespace: "prod",
    chart: "./chart",
    globalArgs: ["--namespace", "prod"],
  },
  {
    args: ["upgrade", "-n", "prod", "-n", "staging", "my-rel", "./chart"],
    release: "my-rel",
    namespace: "staging",
    globalArgs: ["-n", "prod", "-n", "staging"],
  },
  // shorthands combined as pflag allows: -i and -n prod
  {
    args: ["upgrade", "-in", "prod", "my-rel", "./chart"],
    release: "my-rel",
    namespace: "prod",
    install: true,
    globalArgs: ["-n", "prod"],
  },
  // a value-taking flag takes the next argument even when it looks like a flag (as pflag)
  {
    args: ["upgrade", "--namespace", "--wait", "my-rel", "./c"],
    release: "my-rel",
    namespace: "--wait",
  },
  // global flags before the command, as helm accepts them
  {
    args: ["--kube-context", "staging", "upgrade", "my-rel", "./chart"],
    release: "my-rel",
    globalArgs: ["--kube-context", "staging"],
    check: (inv) => assert.equal(inv.cluster.kubeContext, "staging"),
  },
  {
    args: ["-n", "prod", "--debug", "upgrade", "my-rel", "./chart"],
    release: "my-rel",
    namespace: "prod",
    debug: true,
    globalArgs: ["-n", "prod", "--debug"],
  },
  {
    args: ["upgrade", "my-rel", "./chart", "--kube-context=gke_proj_europe-west1_prod"],
    release: "my-rel",
    globalArgs: ["--kube-context=gke_proj_europe-west1_prod"],
    check: (inv) => assert.equal(inv.cluster.kubeContext, "gke_proj_europe-west1_prod"),
  },
  // Helm 4: --wait strategies, --server-side, --rollback-on-failure
  { args: ["upgrade", "--wait=watcher", "my-rel", "./chart"], release: "my-rel", chart: "./chart" },
  // In Helm 4 "--wait watcher" is --wait plus the positional "watcher" (verified with 4.1.4)
  { args: ["upgrade", "--wait", "watcher", "my-rel", "./chart"], release: "watcher" },
  { args: ["upgrade", "--server-side=true", "my-rel", "./chart"], release: "my-rel" },
  // Helm 4 upgrade --server-side is a string flag: "true" is its value
  { args: ["upgrade", "--server-side", "true", "my-rel", "./chart"], release: "my-rel" },
  // ... but a boolean for install
  { args: ["install", "--server-side", "my-rel", "./chart"], release: "my-rel", install: true },
  {
    args: [
      "upgrade",
      "--rollback-on-failure",
      "--wait=watcher",
      "--timeout",
      "5m",
      "my-rel",
      "oci://registry.example.com/charts/app",
      "--version",
      "1.2.3",
    ],
    release: "my-rel",
    chart: "oci://registry.example.com/charts/app",
  },
  {
    args: ["upgrade", "my-rel", "./c", "--force-replace", "--force-conflicts", "--take-ownership"],
    release: "my-rel",
  },
  { args: ["upgrade", "--color", "never", "my-rel", "./chart"], release: "my-rel" },
  // our own flags, anywhere before "--", in both forms
  {
    args: ["upgrade", "my-rel", "./chart", "--lock-timeout", "5m"],
    helmArgs: ["upgrade", "my-rel", "./chart"],
    release: "my-rel",
    lockTimeoutMs: 300_000,
  },
  {
    args: ["upgrade", "--lock-timeout=90s", "my-rel", "./chart"],
    helmArgs: ["upgrade", "my-rel", "./chart"],
    release: "my-rel",
    lockTimeoutMs: 90_000,
  },
  {
    args: ["--lock-timeout", "1h30m", "upgrade", "-n", "prod", "my-rel", "./chart"],
    helmArgs: ["upgrade", "-n", "prod", "my-rel", "./chart"],
    release: "my-rel",
    namespace: "prod",
    lockTimeoutMs: 5_400_000,
  },
  // the deploy queue's flags (issue 12)
  {
    args: ["upgrade", "my-rel", "--lock-queue", "newest", "./chart", "--lock-superseded-ok"],
    helmArgs: ["upgrade", "my-rel", "./chart"],
    release: "my-rel",
    chart: "./chart",
    check: (inv) => {
      assert.equal(inv.queue, "newest");
      assert.equal(inv.supersededOk, true);
      assert.equal(inv.orderKey, undefined);
    },
  },
  {
    args: ["upgrade", "my-rel", "./chart", "--lock-order-key=1234", "--lock-queue=fifo"],
    helmArgs: ["upgrade", "my-rel", "./chart"],
    release: "my-rel",
    check: (inv) => {
      assert.equal(inv.queue, "fifo");
      assert.equal(inv.orderKey, 1234);
      assert.equal(inv.supersededOk, false);
    },
  },
  {
    args: ["upgrade", "my-rel", "./chart"],
    release: "my-rel",
    check: (inv) =>
      assert.deepEqual([inv.queue, inv.orderKey, inv.supersededOk], ["fifo", undefined, false]),
  },
  {
    args: ["upgrade", "my-rel", "--lock-no-recover", "./chart", "--lock-timeout=0"],
    helmArgs: ["upgrade", "my-rel", "./chart"],
    release: "my-rel",
    chart: "./chart",
    recover: false,
    lockTimeoutMs: 0,
  },
  {
    args: ["upgrade", "my-rel", "./chart", "--lock-no-fence"],
    helmArgs: ["upgrade", "my-rel", "./chart"],
    release: "my-rel",
    chart: "./chart",
    fence: false,
  },
  // the example from the issue
  {
    args: [
      "upgrade",
      "my-release",
      "./chart",
      "--lock-timeout",
      "5m",
      "-n",
      "prod",
      "--set",
      "image.tag=v2",
    ],
    helmArgs: ["upgrade", "my-release", "./chart", "-n", "prod", "--set", "image.tag=v2"],
    release: "my-release",
    namespace: "prod",
    lockTimeoutMs: 300_000,
  },
  // after "--" nothing is ours, and positionals still count (as in helm)
  {
    args: ["upgrade", "--install", "--", "my-rel", "./chart"],
    release: "my-rel",
    chart: "./chart",
    install: true,
  },
  {
    args: ["upgrade", "my-rel", "./chart", "--lock-timeout", "1m", "--", "--lock-timeout", "x"],
    helmArgs: ["upgrade", "my-rel", "./chart", "--", "--lock-timeout", "x"],
    release: "my-rel",
    lockTimeoutMs: 60_000,
  },
  // quoted values with spaces, unicode
  { args: ["upgrade", "my-rel", "./chart", "--set", "greeting=hello world"], release: "my-rel" },
  {
    args: ["upgrade", "my-rel", "./chart", "--set-string", "motd=Grüß Gott 🚀"],
    release: "my-rel",
  },
  {
    args: ["upgrade", "--description", "déploiement « prod » 🚀", "my-rel", "./chart"],
    release: "my-rel",
  },
  {
    args: ["upgrade", "my-rel", "./c", "--set-json", 'resources={"limits":{"cpu":"1"}}'],
    release: "my-rel",
  },
  { args: ["upgrade", "--set-file", "config=./app.conf", "my-rel", "./c"], release: "my-rel" },
  { args: ["upgrade", "--set-literal", "pwd=a,b=c", "my-rel", "./c"], release: "my-rel" },
  {
    args: [
      "upgrade",
      "--post-renderer",
      "./kustomize.sh",
      "--post-renderer-args",
      "build",
      "my-rel",
      "./c",
    ],
    release: "my-rel",
  },
  // GitHub Actions style with the commit SHA
  {
    args: ["upgrade", "my-rel", "./chart", "--reuse-values", "--set", "image.tag=3f2a1b9c"],
    release: "my-rel",
  },
  {
    args: ["upgrade", "--history-max", "5", "--description", "deployed by CI", "my-rel", "./c"],
    release: "my-rel",
  },
  {
    args: [
      "upgrade",
      "-i",
      "my-rel",
      "./chart",
      "-n",
      "prod",
      "--create-namespace",
      ...CLUSTER_FLAGS,
    ],
    release: "my-rel",
    namespace: "prod",
    install: true,
    globalArgs: ["-n", "prod", ...CLUSTER_FLAGS],
    check: (inv) =>
      assert.deepEqual(inv.cluster, {
        namespace: "prod",
        kubeconfig: "/etc/kube/config",
        kubeToken: "t0ken",
        kubeApiserver: "https://10.0.0.1:6443",
        kubeCaFile: "/etc/kube/ca.crt",
        kubeInsecureSkipTlsVerify: false,
        kubeTlsServerName: "api.internal",
      }),
  },
  {
    args: [
      "upgrade",
      "my-rel",
      "./c",
      "--kube-as-user",
      "ci",
      "--kube-as-group",
      "devs,ops",
      "--kube-as-group=admins",
      "--kube-insecure-skip-tls-verify",
    ],
    release: "my-rel",
    check: (inv) =>
      assert.deepEqual(inv.cluster, {
        kubeAsUser: "ci",
        kubeAsGroups: ["devs,ops", "admins"],
        kubeInsecureSkipTlsVerify: true,
      }),
  },
  {
    args: ["upgrade", "my-rel", "./c", "--dry-run=server", "--dry-run", "-o", "json"],
    release: "my-rel",
  },
  { args: ["upgrade", "--dry-run", "my-rel", "./c"], release: "my-rel" },
  { args: ["upgrade", "my-rel", "./c", "--install=false"], release: "my-rel", install: false },
  { args: ["upgrade", "my-rel", "./c", "--install=true"], release: "my-rel", install: true },
  {
    args: ["upgrade", "my-rel", "./c", "-f", "https://example.com/values.yaml", "-l", "team=pay"],
    release: "my-rel",
  },
  { args: ["upgrade", "--labels", "team=pay,tier=api", "my-rel", "./c"], release: "my-rel" },
  {
    args: ["upgrade", "my-rel", "./c", "--debug", "--timeout=10m", "--wait-for-jobs"],
    release: "my-rel",
    debug: true,
    globalArgs: ["--debug"],
  },
  { args: ["upgrade", "my-rel.v2", "./chart"], release: "my-rel.v2", chart: "./chart" },
  // unknown flags are assumed boolean; with "=" their value is inline
  { args: ["upgrade", "--from-the-future=x", "my-rel", "./c"], release: "my-rel" },
  { args: ["upgrade", "my-rel", "./c", "--from-the-future", "x"], release: "my-rel", chart: "./c" },
  // install with a repository and credentials
  {
    args: [
      "install",
      "my-rel",
      "app",
      "--repo",
      "https://charts.example.com",
      "--username",
      "ci",
      "--password",
      "s3cret",
    ],
    release: "my-rel",
    chart: "app",
    install: true,
  },
  // the other lockable commands
  {
    args: ["rollback", "my-rel", "3", "--wait", "--cleanup-on-fail"],
    release: "my-rel",
    command: "rollback",
    check: (inv) => assert.equal(inv.chart, undefined),
  },
  { args: ["rollback", "--timeout", "2m", "my-rel"], release: "my-rel", command: "rollback" },
  {
    args: ["uninstall", "my-rel", "--keep-history", "-n", "prod"],
    release: "my-rel",
    command: "uninstall",
    namespace: "prod",
  },
  { args: ["delete", "my-rel"], release: "my-rel", command: "uninstall" },
  { args: ["un", "--wait", "my-rel"], release: "my-rel", command: "uninstall" },
  {
    args: ["uninstall", "--cascade", "foreground", "my-rel"],
    release: "my-rel",
    command: "uninstall",
  },
  {
    args: ["test", "my-rel", "--logs", "--filter", "name=smoke-test"],
    release: "my-rel",
    command: "test",
  },
  { args: ["test", "--timeout", "30s", "my-rel"], release: "my-rel", command: "test" },
];

for (const c of CASES) {
  Deno.test(`parseArgs() reads ${JSON.stringify(c.args.join(" "))}`, () => {
    const parsed = parseArgs(c.args);
    assert.equal(parsed.kind, "run");
    if (parsed.kind !== "run") return;
    const inv = parsed.invocation;
    assert.equal(inv.release, c.release);
    assert.equal(inv.command, c.command ?? (c.args.includes("upgrade") ? "upgrade" : "install"));
    assert.equal(inv.cluster.namespace, c.namespace);
    assert.deepEqual(inv.helmArgs, c.helmArgs ?? c.args);
    assert.equal(inv.install, c.install ?? false);
    if (c.chart !== undefined) assert.equal(inv.chart, c.chart);
    if (c.globalArgs !== undefined) assert.deepEqual(inv.globalArgs, c.globalArgs);
    assert.equal(inv.lockTimeoutMs, c.lockTimeoutMs ?? 600_000);
    assert.equal(inv.recover, c.recover ?? true);
    assert.equal(inv.fence, c.fence ?? true);
    assert.equal(inv.debug, c.debug ?? false);
    c.check?.(inv);
  });
}

Deno.test("parseArgs() has at least 40 real-world command lines to check", () => {
  assert.ok(CASES.length >= 40, `${CASES.length} cases`);
});

Deno.test("parseArgs() defaults --lock-timeout to 10m", () => {
  const parsed = parseArgs(["upgrade", "app", "./c"], "helm-lock", {});
  assert.ok(parsed.kind === "run");
  assert.equal(parsed.invocation.lockTimeoutMs, 600_000);
});

Deno.test("parseArgs() copies no global flag from command flags into globalArgs", () => {
  const parsed = parseArgs(["upgrade", "my-rel", "./c", "--wait", "--set", "a=b", "-i"]);
  assert.ok(parsed.kind === "run");
  assert.deepEqual(parsed.invocation.globalArgs, []);
  assert.deepEqual(parsed.invocation.cluster, {});
});

const SPECIAL: [string[], unknown][] = [
  [["--help"], { kind: "help" }],
  [["-h"], { kind: "help" }],
  [["-n", "prod", "--help"], { kind: "help" }],
  [["--version"], { kind: "version" }],
  [["--help", "--version"], { kind: "help" }],
  [["upgrade", "--help"], { kind: "passthrough", helmArgs: ["upgrade", "--help"] }],
  [["upgrade", "my-rel", "-h"], { kind: "passthrough", helmArgs: ["upgrade", "my-rel", "-h"] }],
  [
    ["uninstall", "--lock-timeout", "5m", "--help"],
    { kind: "passthrough", helmArgs: ["uninstall", "--help"] },
  ],
  // Commands that do not change a release reach helm verbatim, less --lock-* flags.
  [["version", "--short"], { kind: "passthrough", helmArgs: ["version", "--short"] }],
  [["list", "-A"], { kind: "passthrough", helmArgs: ["list", "-A"] }],
  [["status", "my-rel"], { kind: "passthrough", helmArgs: ["status", "my-rel"] }],
  [["my-rel", "upgrade"], { kind: "passthrough", helmArgs: ["my-rel", "upgrade"] }],
  [
    ["-n", "prod", "list", "--filter", "^app$", "--lock-timeout=1m", "--pending"],
    { kind: "passthrough", helmArgs: ["-n", "prod", "list", "--filter", "^app$", "--pending"] },
  ],
  [
    ["template", "r", "./chart", "--lock-timeout", "1m", "--lock-no-recover", "--set", "a=b"],
    { kind: "passthrough", helmArgs: ["template", "r", "./chart", "--set", "a=b"] },
  ],
  [
    ["diff", "upgrade", "r", "./c", "--lock-lease-duration", "5s", "--", "--lock-timeout"],
    { kind: "passthrough", helmArgs: ["diff", "upgrade", "r", "./c", "--", "--lock-timeout"] },
  ],
  [["--kube-context", "upgrade", "list"], {
    kind: "passthrough",
    helmArgs: ["--kube-context", "upgrade", "list"],
  }],
  [["help", "upgrade"], { kind: "passthrough", helmArgs: ["help", "upgrade"] }],
  [["list", "-n"], { kind: "passthrough", helmArgs: ["list", "-n"] }],
  // helm-lock's own commands take the rest of the argv (their files parse it).
  [["lock-status", "app", "-o", "json"], {
    kind: "subcommand",
    name: "lock-status",
    args: ["app", "-o", "json"],
  }],
  [["-n", "prod", "lock-list", "-A"], {
    kind: "subcommand",
    name: "lock-list",
    args: ["-n", "prod", "-A"],
  }],
  [["lock-unlock", "app", "--force"], {
    kind: "subcommand",
    name: "lock-unlock",
    args: ["app", "--force"],
  }],
  [["lock-completion", "bash"], { kind: "subcommand", name: "lock-completion", args: ["bash"] }],
  // cobra's completion request (helm's, and so a helm-lock's standing in for helm).
  [["__complete", "upgrade", "--lock-q"], { kind: "complete", words: ["upgrade", "--lock-q"] }],
  [["__complete"], { kind: "complete", words: [] }],
];

for (const [args, expected] of SPECIAL) {
  Deno.test(`parseArgs() reads ${JSON.stringify(args.join(" "))} as ${JSON.stringify(expected)}`, () => {
    assert.deepEqual(parseArgs(args), expected);
  });
}

const ERRORS: [string[], string | RegExp][] = [
  [
    [],
    `Cannot run as the helm command is missing: expected ` +
    `"helm lock <HELM_COMMAND> <RELEASE_NAME> [CHART] [FLAGS]", found "helm lock"`,
  ],
  [["--wait", "-n", "prod"], /the helm command is missing.*found "helm lock --wait -n prod"/],
  [["--help=false"], /the helm command is missing/],
  [
    ["upgrade", "--wait"],
    `Cannot lock as the release name is missing: expected "helm lock upgrade <release> <chart>", ` +
    `found "helm lock upgrade --wait"`,
  ],
  [["upgrade"], /release name is missing/],
  [["upgrade", "--namespace", "prod"], /release name is missing/],
  [
    ["rollback", "--"],
    /release name is missing: expected "helm lock rollback <release> \[revision\]"/,
  ],
  [["upgrade", "my-rel", "./chart", "--namespace"], /Cannot run as --namespace has no value/],
  [["upgrade", "my-rel", "-n"], /Cannot run as -n has no value: expected "-n <value>"/],
  [["-n"], /-n has no value/],
  [
    ["upgrade", "my-rel", "./chart", "--lock-timeout", "5x"],
    `Cannot use --lock-timeout as "5x" has an unknown unit "x": ` +
    `expected one of "ns", "us", "ms", "s", "m", "h"`,
  ],
  [["upgrade", "my-rel", "./chart", "--lock-timeout"], /--lock-timeout has no value/],
  [["upgrade", "my-rel", "--lock-timeout=-1s"], /"-1s" is negative/],
  [["upgrade", "my-rel", "--lock-timeout=300"], /"300" has no unit/],
  [["upgrade", "my-rel", "--lock-timeout="], /the duration is empty/],
  [
    ["upgrade", "my-rel", "--lock-foo"],
    /"--lock-foo" is not a helm-lock flag: expected --lock-timeout/,
  ],
  [
    ["upgrade", "my-rel", "--lock-no-recover=maybe"],
    /--lock-no-recover=maybe as the value is not a boolean/,
  ],
  [["upgrade", "my-rel", "--debug=maybe"], /--debug=maybe as the value is not a boolean/],
  [
    ["upgrade", "my-rel", "--lock-queue", "lifo"],
    `Cannot use --lock-queue as "lifo" is no queue mode: expected "fifo" or "newest"`,
  ],
  [["upgrade", "my-rel", "--lock-queue"], /--lock-queue has no value: expected "fifo" or/],
  [
    ["upgrade", "my-rel", "--lock-order-key", "12a"],
    `Cannot use --lock-order-key as "12a" is not a whole number: expected a whole number such ` +
    `as $CI_PIPELINE_IID`,
  ],
  [["upgrade", "my-rel", "--lock-order-key="], /--lock-order-key as "" is not a whole number/],
  [["upgrade", "my-rel", "--lock-order-key=-3"], /"-3" is not a whole number/],
  [["upgrade", "my-rel", "--lock-order-key=99999999999999999999"], /not a whole number/],
  [["upgrade", "my-rel", "--lock-superseded-ok=perhaps"], /not a boolean/],
  [["list", "--lock-timeout", "5x"], /Cannot use --lock-timeout as "5x" has an unknown unit/],
  [["version", "--lock-nope"], /"--lock-nope" is not a helm-lock flag/],
  [["install", "--generate-name", "./chart"], /release name is generated by --generate-name/],
  [["install", "-g", "./chart"], /release name is generated by --generate-name/],
  [["install", "--name-template", "x-{{randAlpha 3}}", "./c"], /generated by --name-template/],
  [["uninstall", "one", "two"], /Cannot lock more than one release/],
  [["upgrade", "My_Rel", "./chart"], /release "My_Rel" as it is not a valid release name/],
  [["upgrade", "a".repeat(54), "./chart"], /not a valid release name/],
];

for (const [args, message] of ERRORS) {
  Deno.test(`parseArgs() refuses ${JSON.stringify(args.join(" "))}`, () => {
    assert.throws(() => parseArgs(args, "helm lock"), (err) => {
      assert.ok(err instanceof HelmLockError);
      assert.equal(err.code, ExitCode.Usage);
      assert.ok(!err.message.includes("\n"));
      assert.ok(!err.message.endsWith("."));
      if (typeof message === "string") assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    });
  });
}

Deno.test("parseArgs() masks no name or word that equals a --set value (issue 17)", () => {
  const message = (args: string[]) => {
    try {
      parseArgs(args, "helm-lock");
    } catch (err) {
      assert.ok(err instanceof HelmLockError);
      return err.message;
    }
    assert.fail("no error");
  };
  assert.equal(
    message(["upgrade", "-n", "staging", "--set", "global.environment=staging", "--set", "a=shop"]),
    `Cannot lock as the release name is missing: expected "helm-lock upgrade <release> <chart>", ` +
      `found "helm-lock upgrade -n staging --set global.environment=*** --set a=***"`,
  );
  assert.match(
    message(["upgrade", "Shop", "--set", "x=Shop", "--set", "tag=release"]),
    /^Cannot lock release "Shop" as it is not a valid release name: .*found "helm-lock upgrade Shop --set x=\*\*\* --set tag=\*\*\*"$/,
  );
});

Deno.test("parseArgs() names the program as it was invoked (issue 17)", () => {
  for (const program of ["helm lock", "helm-lock"]) {
    assert.throws(
      () => parseArgs(["upgrade", "--wait"], program),
      (err) => {
        assert.ok(err instanceof HelmLockError);
        assert.equal(
          err.message,
          `Cannot lock as the release name is missing: expected "${program} upgrade <release> ` +
            `<chart>", found "${program} upgrade --wait"`,
        );
        return true;
      },
    );
  }
});

Deno.test("programName() is helm lock only when helm runs the lock plugin", () => {
  assert.equal(programName({ HELM_PLUGIN_DIR: "/p/lock", HELM_PLUGIN_NAME: "lock" }), "helm lock");
  assert.equal(programName({}), "helm-lock");
  // HELM_BIN is set for the standalone binary too; another plugin may start helm-lock.
  assert.equal(programName({ HELM_BIN: "/usr/bin/helm" }), "helm-lock");
  assert.equal(programName({ HELM_PLUGIN_DIR: "/p/diff", HELM_PLUGIN_NAME: "diff" }), "helm-lock");
});

Deno.test("parseArgs() accepts a 53 character release name", () => {
  const parsed = parseArgs(["upgrade", "a".repeat(53), "./chart"]);
  assert.ok(parsed.kind === "run");
});

Deno.test("parseArgs() never shows a --set secret in its errors", () => {
  for (
    const args of [
      ["upgrade", "--set", "db.password=hunter2"],
      ["upgrade", "--set=db.password=hunter2", "--namespace"],
      ["upgrade", "--password=hunter2"],
      // The secret lands where the release is expected, and is quoted there. (Where the
      // command is expected, the line is not ours: it passes through to helm.)
      // A flag helm's tables do not know is read as boolean: its value becomes the release.
      ["upgrade", "--my-token", "Bad_hunter2", "./chart"],
      ["--kube-token", "hunter2", "upgrade", "Bad_rel", "./chart"],
    ]
  ) {
    assert.throws(() => parseArgs(args), (err) => {
      assert.ok(err instanceof HelmLockError);
      assert.ok(!err.message.includes("hunter2"), err.message);
      assert.match(err.message, /\*\*\*/);
      return true;
    });
  }
});

Deno.test("parseArgs() tells a dry run from a real one", () => {
  const dryRun = (...flags: string[]) => {
    const parsed = parseArgs(["upgrade", "app", "./chart", ...flags]);
    assert.ok(parsed.kind === "run");
    return parsed.invocation.dryRun;
  };
  assert.equal(dryRun(), false);
  assert.equal(dryRun("--dry-run"), true);
  assert.equal(dryRun("--dry-run=server"), true);
  assert.equal(dryRun("--dry-run=client"), true);
  assert.equal(dryRun("--dry-run=none"), false);
  assert.equal(dryRun("--dry-run=false"), false);
  assert.equal(dryRun("--dry-run", "--dry-run=none"), false);
});

Deno.test("parseArgs() does not change its input", () => {
  const args = ["upgrade", "my-rel", "./c", "--lock-timeout", "5m"];
  parseArgs(args);
  assert.deepEqual(args, ["upgrade", "my-rel", "./c", "--lock-timeout", "5m"]);
});

// pflag semantics checked against the real binaries: `helm template` reads its flags like
// `helm install` (same flag set for these shapes), and prints the release and namespace.
const HELM_BINS = [Deno.env.get("HELM_LOCK_TEST_HELM3"), Deno.env.get("HELM_LOCK_TEST_HELM4")];
const SHAPES: { before?: string[]; after: string[] }[] = [
  { after: ["-nprod", "rel", "CHART"] },
  { after: ["-n=prod", "rel", "CHART"] },
  { after: ["--namespace=prod", "rel", "CHART"] },
  { after: ["--namespace", "prod", "rel", "CHART"] },
  { after: ["--namespace", "--wait", "rel", "CHART"] },
  { after: ["--wait", "rel", "CHART"] },
  { after: ["--wait-for-jobs", "--dry-run", "rel", "CHART"] },
  { after: ["--", "rel", "CHART"] },
  { after: ["-n", "prod", "--", "rel", "CHART"] },
  { after: ["--set", "a=b,c=d", "--set-string", "e=f=g", "rel", "CHART"] },
  { after: ["--description", "hello wörld 🚀", "rel", "CHART", "-n", "x"] },
  { after: ["--kube-context", "ctx", "--timeout", "5m", "rel", "CHART"] },
  { after: ["--skip-crds", "--labels", "a=b", "-f", "VALUES", "-f", "VALUES", "rel", "CHART"] },
  { after: ["--post-renderer-args", "x", "--keyring", "k", "rel", "CHART"] },
  { before: ["-n", "prod", "--debug"], after: ["rel", "CHART"] },
  { before: ["--namespace=prod"], after: ["rel", "CHART", "--namespace", "last"] },
];

for (const [index, bin] of HELM_BINS.entries()) {
  Deno.test({
    name: `parseArgs() finds the release and namespace helm ${index + 3} finds`,
    ignore: bin === undefined,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "helm-lock-argv-" });
      try {
        const chart = `${dir}/chart`;
        await Deno.mkdir(`${chart}/templates`, { recursive: true });
        await Deno.writeTextFile(`${dir}/values.yaml`, "a: b\n");
        await Deno.writeTextFile(
          `${chart}/Chart.yaml`,
          "apiVersion: v2\nname: c\nversion: 0.1.0\n",
        );
        await Deno.writeTextFile(
          `${chart}/templates/cm.yaml`,
          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name | quote }}\n" +
            "  namespace: {{ .Release.Namespace | quote }}\n",
        );
        for (const shape of SHAPES) {
          const after = shape.after.map((arg) =>
            arg === "CHART" ? chart : arg === "VALUES" ? `${dir}/values.yaml` : arg
          );
          const before = shape.before ?? [];
          const output = await new Deno.Command(bin ?? "", {
            args: [...before, "template", ...after],
            clearEnv: true,
            env: { HOME: dir, PATH: Deno.env.get("PATH") ?? "" },
            stdout: "piped",
            stderr: "piped",
          }).output();
          const stdout = new TextDecoder().decode(output.stdout);
          assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
          const parsed = parseArgs([...before, "install", ...after]);
          assert.ok(parsed.kind === "run");
          const inv = parsed.invocation;
          assert.match(stdout, new RegExp(`name: ${JSON.stringify(inv.release)}`), after.join(" "));
          const namespace = JSON.stringify(inv.cluster.namespace ?? "default");
          assert.ok(stdout.includes(`namespace: ${namespace}`), `${after.join(" ")}: ${stdout}`);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

for (const [shape, make] of Object.entries(ADVERSARIAL)) {
  Deno.test(`parseArgs() is linear in the input: ${shape}`, () => {
    const parse = (args: string[]) => {
      try {
        return parseArgs(args, "helm-lock");
      } catch (err) {
        if (!(err instanceof HelmLockError)) throw err;
        return err;
      }
    };
    assertLinear(
      "parseArgs()",
      make,
      (s) => parse(["upgrade", "app", "./c", "--description", s, "--set", `k=${s}`, `--set=${s}`]),
    );
    assertLinear("parseArgs() of a bad command", make, (s) => parse([s, "--kube-token", s]));
    assertLinear("--lock-timeout", make, (s) => parse(["upgrade", "app", `--lock-timeout=${s}`]));
  });
}
Deno.test("parseArgs() takes --lock-* settings from HELM_LOCK_* variables, flags winning", () => {
  const run = (args: string[], env: Record<string, string>) => {
    const parsed = parseArgs(args, "helm-lock", env);
    assert.ok(parsed.kind === "run");
    return parsed.invocation;
  };
  const env = {
    HELM_LOCK_TIMEOUT: "90s",
    HELM_LOCK_LEASE_DURATION: "30s",
    HELM_LOCK_NO_RECOVER: "true",
  };
  const fromEnv = run(["upgrade", "app", "./c"], env);
  assert.equal(fromEnv.lockTimeoutMs, 90_000);
  assert.equal(fromEnv.leaseDurationSeconds, 30);
  assert.equal(fromEnv.recover, false);
  const flagsWin = run(
    ["upgrade", "app", "./c", "--lock-timeout=5m", "--lock-lease-duration", "5s"],
    { ...env, HELM_LOCK_NO_RECOVER: "false" },
  );
  assert.equal(flagsWin.lockTimeoutMs, 300_000);
  assert.equal(flagsWin.leaseDurationSeconds, 5);
  assert.equal(flagsWin.recover, true);
  assert.equal(run(["upgrade", "app", "./c", "--lock-no-recover=false"], env).recover, true);
  // Empty is unset, as with helm's own variables.
  assert.equal(run(["upgrade", "app", "./c"], { HELM_LOCK_TIMEOUT: "" }).lockTimeoutMs, 600_000);
});

for (
  const [env, message] of [
    [{ HELM_LOCK_TIMEOUT: "10" }, /^Cannot use HELM_LOCK_TIMEOUT=10 as "10" has no unit/],
    [
      { HELM_LOCK_LEASE_DURATION: "500ms" },
      /^Cannot use HELM_LOCK_LEASE_DURATION=500ms as it must be at least 1s/,
    ],
    [
      { HELM_LOCK_NO_RECOVER: "yes" },
      /^Cannot use HELM_LOCK_NO_RECOVER=yes as the value is not a boolean: expected HELM_LOCK_NO_RECOVER=true/,
    ],
  ] as const
) {
  Deno.test(`parseArgs() refuses ${JSON.stringify(env)} naming the variable`, () => {
    assert.throws(() => parseArgs(["upgrade", "app", "./c"], "helm-lock", env), (err) => {
      assert.ok(err instanceof HelmLockError);
      assert.equal(err.code, ExitCode.Usage);
      assert.match(err.message, message);
      return true;
    });
  });
}

Deno.test("parseArgs() ignores HELM_LOCK_* variables for a command it passes through", () => {
  assert.deepEqual(parseArgs(["list"], "helm-lock", { HELM_LOCK_TIMEOUT: "bad" }), {
    kind: "passthrough",
    helmArgs: ["list"],
  });
});

Deno.test("every --lock-* flag has a HELM_LOCK_* variable named after it", () => {
  for (const flag of LOCK_FLAG_TABLE) {
    const name = `HELM_${flag.name.toUpperCase().replaceAll("-", "_")}`;
    assert.throws(
      () => parseArgs(["upgrade", "app", "./c"], "helm-lock", { [name]: "%bad" }),
      (e) => e instanceof HelmLockError && e.message.startsWith(`Cannot use ${name}=%bad as `),
    );
  }
  const parsed = parseArgs(["upgrade", "app", "./c"], "helm-lock", { HELM_LOCK_ORDER_KEY: "7" });
  assert.ok(parsed.kind === "run");
  assert.equal(parsed.invocation.orderKey, 7);
});

Deno.test("helm-lock's own command names are no helm 3 or 4 command", () => {
  // From `helm --help` of Helm 3.17.2 and 4.1.4 (the same list), "help" included.
  const helmCommands = [
    "completion",
    "create",
    "dependency",
    "env",
    "get",
    "help",
    "history",
    "install",
    "lint",
    "list",
    "package",
    "plugin",
    "pull",
    "push",
    "registry",
    "repo",
    "rollback",
    "search",
    "show",
    "status",
    "template",
    "test",
    "uninstall",
    "upgrade",
    "verify",
    "version",
  ];
  for (const { name } of OWN_COMMANDS) assert.ok(!helmCommands.includes(name), name);
});
