import assert from "node:assert/strict";
import {
  COMMAND_ALIASES,
  type FlagKind,
  flagTable,
  helmFlags,
  type HelmMajor,
  isGlobalFlag,
  LOCKABLE_COMMANDS,
} from "../../lib/helm/flags.ts";

const TABLES = ["global", ...LOCKABLE_COMMANDS] as const;

// The real binaries, as tests/run.ts exports them; the comparison is skipped without them.
const HELMS: [HelmMajor, string | undefined][] = [
  [3, Deno.env.get("HELM_LOCK_TEST_HELM3")],
  [4, Deno.env.get("HELM_LOCK_TEST_HELM4")],
];

interface HelpFlags {
  long: Map<string, FlagKind>;
  short: Map<string, string>;
  aliases: string[];
}

// Reads the "Flags:" section of `helm [command] --help`: a type word after the flag means it
// takes a value, `type[=default]` that the value is optional and only follows "=".
async function helpFlags(bin: string, command: string): Promise<HelpFlags> {
  const args = command === "global" ? ["--help"] : [command, "--help"];
  const output = await new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const lines = new TextDecoder().decode(output.stdout).split("\n");
  const result: HelpFlags = { long: new Map(), short: new Map(), aliases: [] };
  let section = "";
  for (const line of lines) {
    if (/^\S.*:$/.test(line)) {
      section = line;
      continue;
    }
    if (section === "Aliases:" && line.trim()) {
      result.aliases = line.trim().split(/,\s*/).slice(1);
    }
    if (section !== "Flags:") continue;
    const match = /^\s+(?:-(\w), )?--([\w-]+)(?: (\S+))?(?:\s{2,}|$)/.exec(line);
    if (!match) continue;
    const [, letter, name = "", type] = match;
    result.long.set(name, type === undefined ? "bool" : type.includes("[=") ? "optional" : "value");
    if (letter) result.short.set(letter, name);
  }
  return result;
}

for (const [major, bin] of HELMS) {
  for (const command of TABLES) {
    Deno.test({
      name: `helmFlags(${major}, "${command}") matches helm ${major} ${command} --help`,
      ignore: bin === undefined,
      async fn() {
        const help = await helpFlags(bin ?? "", command);
        const table = helmFlags(major, command);
        assert.deepEqual(
          Object.fromEntries([...table.long].sort()),
          Object.fromEntries([...help.long].sort()),
        );
        assert.deepEqual(
          Object.fromEntries([...table.short].sort()),
          Object.fromEntries([...help.short].sort()),
        );
        if (command !== "global") {
          const aliases = Object.entries(COMMAND_ALIASES)
            .filter(([, canonical]) => canonical === command)
            .map(([alias]) => alias);
          assert.deepEqual(aliases.sort(), help.aliases.sort());
        }
      },
    });
  }
}

Deno.test("helmFlags() never disagrees between versions on consuming the next argument", () => {
  for (const command of TABLES) {
    const h3 = helmFlags(3, command).long;
    const h4 = helmFlags(4, command).long;
    for (const [name, kind] of h3) {
      const other = h4.get(name);
      if (other === undefined) continue;
      assert.equal(
        kind === "value",
        other === "value",
        `--${name} of ${command}: helm 3 ${kind}, helm 4 ${other}`,
      );
    }
  }
});

Deno.test("flagTable() merges global flags and both versions", () => {
  const upgrade = flagTable("upgrade");
  assert.equal(upgrade.long.get("namespace"), "value");
  assert.equal(upgrade.short.get("n"), "namespace");
  assert.equal(upgrade.short.get("i"), "install");
  assert.equal(upgrade.long.get("atomic"), "bool"); // Helm 3 only
  assert.equal(upgrade.long.get("rollback-on-failure"), "bool"); // Helm 4 only
  assert.equal(upgrade.long.get("server-side"), "value"); // Helm 4 string flag
  assert.equal(upgrade.long.get("wait"), "optional"); // Helm 3 bool, Helm 4 --wait[=watcher]
  assert.equal(upgrade.long.get("color"), "value"); // Helm 4 global
  assert.equal(flagTable("install").long.get("server-side"), "bool");
  assert.equal(flagTable("global").long.get("set"), undefined);
});

Deno.test("isGlobalFlag() knows the connection flags and not the command flags", () => {
  assert.ok(isGlobalFlag("namespace"));
  assert.ok(isGlobalFlag("kube-context"));
  assert.ok(isGlobalFlag("debug"));
  assert.ok(!isGlobalFlag("set"));
  assert.ok(!isGlobalFlag("wait"));
});
