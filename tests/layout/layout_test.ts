/**
 * The layout of `lib/` (README, "Layout"): which folder may import which, so that imports go
 * down only, and no import cycle at all (type-only imports included).
 */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";

const ROOT = join(import.meta.dirname!, "..", "..");
const LIB = join(ROOT, "lib");

/** Which folders each folder of `lib/` may import; `.` is the shared leaves in `lib/`. */
const ALLOWED: Record<string, string[]> = {
  ".": ["."],
  kube: [".", "kube"],
  // helm/fence.ts fences helm's traffic behind the held lock (the lock known by type only).
  helm: [".", "kube", "lock", "fence", "helm"],
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

Deno.test("lib/ folders import only the folders below them", () => {
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

Deno.test("the table lets imports go down only: no two folders may import each other", () => {
  // Folder by folder, each may import only folders already placed below it.
  const placed = new Set<string>();
  let left = Object.keys(ALLOWED);
  while (left.length > 0) {
    const next = left.filter((f) => ALLOWED[f]!.every((to) => to === f || placed.has(to)));
    assert.ok(next.length > 0, `a cycle among ${left.join(", ")}`);
    for (const f of next) placed.add(f);
    left = left.filter((f) => !placed.has(f));
  }
});

Deno.test("every folder of lib/ is in the table of what it may import", () => {
  const folders = [...Deno.readDirSync(LIB)].filter((e) => e.isDirectory).map((e) => e.name);
  assert.deepEqual(folders.filter((f) => !(f in ALLOWED)), []);
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
