import assert from "node:assert/strict";
import {
  COMMAND_ALIASES,
  type FlagKind,
  flagTable,
  isGlobalFlag,
  LOCKABLE_COMMANDS,
} from "../../lib/helm/flags.ts";

const TABLES = ["global", ...LOCKABLE_COMMANDS] as const;

// The real binaries, as tests/run.ts exports them; the comparisons are skipped without them.
const HELM3 = Deno.env.get("HELM_LOCK_TEST_HELM3");
const HELM4 = Deno.env.get("HELM_LOCK_TEST_HELM4");
const NO_HELMS = HELM3 === undefined || HELM4 === undefined;

interface HelpFlags {
  long: Map<string, FlagKind>;
  short: Map<string, string>;
  aliases: string[];
}

// Reads the "Flags:" and "Global Flags:" sections of `helm [command] --help`: a type word after
// the flag means it takes a value, `type[=default]` that the value is optional and only follows
// "=".
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
    if (section !== "Flags:" && section !== "Global Flags:") continue;
    const match = /^\s+(?:-(\w), )?--([\w-]+)(?: (\S+))?(?:\s{2,}|$)/.exec(line);
    if (!match) continue;
    const [, letter, name = "", type] = match;
    result.long.set(name, type === undefined ? "bool" : type.includes("[=") ? "optional" : "value");
    if (letter) result.short.set(letter, name);
  }
  return result;
}

const helpCache = new Map<string, Promise<HelpFlags>>();

/** {@linkcode helpFlags}, each helm asked once per command. */
function help(bin: string, command: string): Promise<HelpFlags> {
  const key = `${bin} ${command}`;
  if (!helpCache.has(key)) helpCache.set(key, helpFlags(bin, command));
  return helpCache.get(key)!;
}

const sorted = <V>(map: ReadonlyMap<string, V>) => Object.fromEntries([...map].sort());

for (const command of TABLES) {
  Deno.test({
    name: `flagTable("${command}") is what helm 3 and helm 4 ${command} --help list together`,
    ignore: NO_HELMS,
    async fn() {
      const helps = [await help(HELM3!, command), await help(HELM4!, command)];
      // A flag consumes the next argument if it does in either version (value, then optional,
      // then bool).
      const long = new Map<string, FlagKind>();
      for (const [name, kind] of helps.flatMap((h) => [...h.long])) {
        const was = long.get(name);
        if (was !== "value" && (was !== "optional" || kind === "value")) long.set(name, kind);
      }
      const table = flagTable(command);
      assert.deepEqual(sorted(table.long), sorted(long));
      assert.deepEqual(sorted(table.short), sorted(new Map(helps.flatMap((h) => [...h.short]))));
      if (command !== "global") {
        const aliases = Object.entries(COMMAND_ALIASES)
          .filter(([, canonical]) => canonical === command)
          .map(([alias]) => alias);
        for (const h of helps) assert.deepEqual(aliases.sort(), h.aliases.sort());
      }
    },
  });
}

Deno.test({
  // What lets one table serve both versions (flagTable()).
  name: "helm 3 and helm 4 never disagree on whether a flag consumes the next argument",
  ignore: NO_HELMS,
  async fn() {
    for (const command of TABLES) {
      const h3 = (await help(HELM3!, command)).long;
      const h4 = (await help(HELM4!, command)).long;
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
  },
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
