/**
 * helm-lock's own commands as a user meets them, without a cluster and without helm: each
 * one's help, the completion scripts, and what the standalone completion answers.
 */
import assert from "node:assert/strict";
import { helmLock, writeLauncher } from "../support/cli.ts";
import { run } from "../support/helm.ts";
import { which } from "../support/plugin_release.ts";
import { OWN_COMMANDS } from "../../lib/cli/help.ts";
import { LOCK_FLAG_TABLE } from "../../lib/cli/lock_flags.ts";
import { ExitCode } from "../../lib/errors.ts";

/** No cluster and no helm: help must need neither. */
const OFFLINE = {
  KUBECONFIG: "/nonexistent/kubeconfig",
  HELM_BIN: "/nonexistent/helm",
  PATH: "/usr/bin:/bin",
};

for (const command of OWN_COMMANDS) {
  for (const flag of ["--help", "-h"]) {
    Deno.test(`${command.name} ${flag} prints its own help to stdout and exits 0, offline`, async () => {
      const out = await helmLock([command.name, "app", flag, "-n", "x"], OFFLINE);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stderr, "");
      assert.ok(out.stdout.startsWith(`helm-lock ${command.name}: `), out.stdout);
      assert.match(out.stdout, new RegExp(`^USAGE\\n  helm-lock ${command.name} `, "m"));
      assert.match(out.stdout, /^OPTIONS\n/m);
      for (const f of [...command.flags, { name: "help", short: "h" }]) {
        assert.match(out.stdout, new RegExp(`${f.short ? `-${f.short}, ` : ""}--${f.name}\\b`));
      }
    });
  }
}

Deno.test("an own command's help names the plugin's command when helm runs it", async () => {
  const out = await helmLock(["lock-list", "--help"], {
    ...OFFLINE,
    HELM_PLUGIN_NAME: "lock",
    HELM_PLUGIN_DIR: "/plugins/lock",
  });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^USAGE\n {2}helm lock lock-list \[-n NAMESPACE \| -A\]/m);
});

Deno.test("--help lists every own command and every --lock-* flag", async () => {
  const out = await helmLock(["--help"], OFFLINE);
  assert.equal(out.code, 0, out.stderr);
  for (const c of OWN_COMMANDS) assert.match(out.stdout, new RegExp(`helm-lock ${c.name} `));
  for (const f of LOCK_FLAG_TABLE) assert.match(out.stdout, new RegExp(`^ {2}--${f.name}\\b`, "m"));
});

Deno.test("lock-completion prints a script per shell and refuses another", async () => {
  for (const shell of ["bash", "zsh", "fish"]) {
    const out = await helmLock(["lock-completion", shell], OFFLINE);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, / __complete /);
  }
  const bad = await helmLock(["lock-completion", "tcsh"], OFFLINE);
  assert.equal(bad.code, ExitCode.Usage);
  assert.match(
    bad.stderr,
    /^helm-lock: Cannot run lock-completion as it takes one shell: expected/,
  );
});

/** What `__complete` answers for `words`: the candidates without descriptions, and the directive. */
async function complete(words: string[], env: Record<string, string> = OFFLINE) {
  const out = await helmLock(["__complete", ...words], env);
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.trimEnd().split("\n");
  return { items: lines.slice(0, -1).map((l) => l.split("\t")[0]), directive: lines.at(-1) };
}

Deno.test("__complete answers helm-lock's own commands, flags and values", async () => {
  assert.deepEqual(await complete(["lock-s"]), { items: ["lock-status"], directive: ":0" });
  assert.deepEqual(await complete(["lock-status", "-o", ""]), {
    items: ["table", "json", "yaml"],
    directive: ":4",
  });
  assert.deepEqual((await complete(["lock-list", "--"])).items, [
    "--output",
    "--all-namespaces",
    "--help",
  ]);
  assert.deepEqual((await complete(["lock-completion", ""])).items, ["bash", "zsh", "fish"]);
  assert.deepEqual((await complete(["lock-unlock", "app", ""])).items, []);
  assert.deepEqual((await complete(["upgrade", "--lock-queue", ""])).items, ["fifo", "newest"]);
  assert.deepEqual((await complete(["upgrade", "app", "--lock-t"])).items, ["--lock-timeout"]);
  assert.deepEqual(
    (await complete(["--lock-timeout", "5m", "--"])).items,
    LOCK_FLAG_TABLE.map((f) => `--${f.name}`),
  );
});

const bash = await which("bash");

Deno.test({
  name: "the bash completion script completes through __complete",
  ignore: bash === undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "helm-lock-completion-" });
    await writeLauncher(dir);
    const script = [
      "source <(helm-lock lock-completion bash)",
      "complete -p helm-lock",
      'COMP_WORDS=(helm-lock lock-status -o ""); COMP_CWORD=3; _helm_lock 2>/dev/null',
      'printf "%s\\n" "${COMPREPLY[@]}"',
      "COMP_WORDS=(helm-lock upgrade --lock-q); COMP_CWORD=2; _helm_lock 2>/dev/null",
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join("\n");
    const out = await run(bash!, ["-c", script], { ...OFFLINE, PATH: `${dir}:${OFFLINE.PATH}` });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(
      out.stdout,
      "complete -F _helm_lock helm-lock\ntable\njson\nyaml\n--lock-queue\n",
    );
  },
});

// Each shell's own way to ask for completions without a terminal: fish's `complete -C`; zsh's
// completion system needs one, so its two functions the script calls are stand-ins printing
// what they are given.
const SHELL_CHECKS = {
  zsh: [
    'compdef() { print -r -- "compdef $*"; }',
    '_describe() { print -rl -- "${(@P)2}"; }',
    "_files() { print -r -- FILES; }",
    "source <(helm-lock lock-completion zsh)",
    'words=(helm-lock lock-status -o ""); CURRENT=4; _helm_lock',
    "words=(helm-lock upgrade --lock-q); CURRENT=3; _helm_lock",
  ].join("\n"),
  fish: [
    "helm-lock lock-completion fish | source",
    'complete -C "helm-lock lock-status -o "',
    'complete -C "helm-lock upgrade --lock-q"',
  ].join("\n"),
};
const EXPECTED = {
  zsh: "compdef _helm_lock helm-lock\ntable\njson\nyaml\n--lock-queue:Who gets the lock",
  fish: "json\ntable\nyaml\n--lock-queue\tWho gets the lock",
};

for (const shell of ["zsh", "fish"] as const) {
  const bin = await which(shell);
  Deno.test({
    name: `the ${shell} completion script completes through __complete`,
    ignore: bin === undefined,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "helm-lock-completion-" });
      await writeLauncher(dir);
      const out = await run(bin!, ["-c", SHELL_CHECKS[shell]], {
        ...OFFLINE,
        PATH: `${dir}:${OFFLINE.PATH}`,
      });
      assert.equal(out.code, 0, out.stderr);
      assert.ok(out.stdout.startsWith(EXPECTED[shell]), out.stdout);
    },
  });
}
