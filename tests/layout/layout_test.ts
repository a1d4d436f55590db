/**
 * The layout of `lib/` as the folders' `mod.ts` headers state it: which folder may import
 * which, and no import cycle at all (type-only imports included).
 */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { LATER_MODULES } from "../../scripts/compile.ts";

const ROOT = join(import.meta.dirname!, "..", "..");
const LIB = join(ROOT, "lib");

/** Which folders each folder of `lib/` may import; `.` is the shared leaves in `lib/`. */
const ALLOWED: Record<string, string[]> = {
  ".": ["."],
  kube: [".", "kube"],
  helm: [".", "kube", "helm"],
  lock: [".", "kube", "lock"],
  fence: [".", "fence"],
  cli: [".", "kube", "helm", "lock", "fence", "cli"],
};

function libFiles(dir = LIB): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) =>
    e.isDirectory ? libFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []
  );
}

/** The relative imports of a module (static, type-only and re-exports), as absolute paths. */
function imports(file: string): string[] {
  const text = Deno.readTextFileSync(file);
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?from\s+"(\.{1,2}\/[^"]+)"/g)]
    .map((m) => join(dirname(file), m[1]!));
}

const folder = (file: string) => {
  const rel = relative(LIB, file);
  return rel.includes("/") ? rel.split("/")[0]! : ".";
};

Deno.test("lib/ folders import only what their mod.ts allows", () => {
  const bad: string[] = [];
  for (const file of libFiles()) {
    for (const target of imports(file)) {
      if (!target.startsWith(LIB)) continue; // deno.json for the version
      const from = folder(file);
      const to = folder(target);
      if (!(ALLOWED[from] ?? []).includes(to)) {
        bad.push(`${relative(ROOT, file)} -> ${relative(ROOT, target)}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("lib/ has no import cycle", () => {
  const graph = new Map(libFiles().map((f) => [f, imports(f).filter((t) => t.startsWith(LIB))]));
  const state = new Map<string, "visiting" | "done">();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "visiting") {
      cycles.push(
        [...path.slice(path.indexOf(file)), file].map((f) => relative(LIB, f)).join(" -> "),
      );
      return;
    }
    state.set(file, "visiting");
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, "done");
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(cycles, []);
});

Deno.test("every folder of lib/ has a mod.ts header saying what it may import", () => {
  for (const entry of Deno.readDirSync(LIB)) {
    if (!entry.isDirectory) continue;
    assert.ok(entry.name in ALLOWED, `lib/${entry.name}/ is in this test's table`);
    const header = Deno.readTextFileSync(join(LIB, entry.name, "mod.ts"));
    assert.match(header, /May import:/, `lib/${entry.name}/mod.ts says what it may import`);
  }
});

Deno.test("lib/ and main.ts never call Deno's global setTimeout or setInterval", () => {
  // Their first call loads Node's timers (~10 ms of the main thread): lib/async.ts's
  // schedule() and delay() are the timers (see schedule()).
  const bad: string[] = [];
  for (const file of [...libFiles(), join(ROOT, "main.ts")]) {
    const code = Deno.readTextFileSync(file).split("\n").map((line) => line.replace(/\/\/.*$/, ""))
      .filter((line) => !/^\s*\*/.test(line));
    code.forEach((line, i) => {
      if (/\b(setTimeout|setInterval)\s*\(/.test(line)) {
        bad.push(`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(bad, []);
});

Deno.test("modules imported later are the ones deno compile includes, and none is read ahead", () => {
  // Deno reads every module a literal import() names before the importer runs, and deno
  // compile sees only those: lib/import_later.ts's importLater() hides the rest from both.
  const later: string[] = [];
  const bad: string[] = [];
  const helper = join(LIB, "import_later.ts");
  for (const file of [...libFiles(), join(ROOT, "main.ts")].filter((f) => f !== helper)) {
    const text = Deno.readTextFileSync(file);
    const calls = [
      ...text.matchAll(
        /importLater<typeof import\("([^"]+)"\)>\(\s*new URL\("([^"]+)", import\.meta\.url\),?\s*\)/g,
      ),
    ];
    for (const [call, typed, path] of calls) {
      if (typed !== path) bad.push(`${relative(ROOT, file)}: ${call}`);
      later.push(relative(ROOT, join(dirname(file), path!)));
    }
    const uses = text.match(/\bimportLater</g)?.length ?? 0;
    if (uses !== calls.length) {
      bad.push(`${relative(ROOT, file)}: an importLater call of another form`);
    }
    // main.ts's import of the command line's modules is read ahead on purpose.
    if (file === join(ROOT, "main.ts")) continue;
    for (
      const [, name] of text.replace(/typeof import\(/g, "").matchAll(/\bimport\("([^"]+)"\)/g)
    ) {
      if (!name!.startsWith("node:")) bad.push(`${relative(ROOT, file)}: import("${name}")`);
    }
  }
  assert.deepEqual(bad, []);
  assert.deepEqual([...new Set(later)].sort(), [...LATER_MODULES].sort());
});
