/**
 * Running main.ts from source (the plugin's deno launcher): what Deno must fetch before helm-lock
 * runs. client-node (about 84 MB with its dependencies) is for auth providers only.
 */
import assert from "node:assert/strict";
import { VERSION } from "../../lib/version.ts";

const root = new URL("../..", import.meta.url).pathname;

async function denoJson(args: string[], env: Record<string, string> = {}): Promise<unknown> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

interface Info {
  roots: string[];
  redirects: Record<string, string>;
  modules: { specifier: string; dependencies?: { code?: { specifier?: string } }[] }[];
}

/** The npm packages main.ts's code imports (literal `import()` included, types not), by name. */
async function npmPackagesOfMain(): Promise<string[]> {
  const info = await denoJson(["info", "--json", "main.ts"]) as Info;
  const modules = new Map(info.modules.map((m) => [m.specifier, m]));
  const found = new Set<string>();
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length > 0) {
    const next = todo.pop()!;
    const specifier = info.redirects[next] ?? next;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    const npm = /^npm:\/?(@?[^@]+)@/.exec(specifier);
    if (npm) found.add(npm[1]!);
    for (const dep of modules.get(specifier)?.dependencies ?? []) {
      if (dep.code?.specifier) todo.push(dep.code.specifier);
    }
  }
  return [...found].sort();
}

Deno.test("main.ts imports no npm package but js-yaml before it runs: client-node only by URL", async () => {
  // Deno downloads the packages of every literal import(), even one never run, at the first start.
  assert.deepEqual(await npmPackagesOfMain(), ["js-yaml"]);
});

Deno.test("main.ts runs from source with js-yaml alone in the Deno cache (no lockfile-wide install)", async () => {
  // Without deno.json's npm-lazy-caching, Deno installs every package of deno.lock at the first
  // start that needs one (client-node too); --cached-only makes that attempt fail the run.
  const { npmCache } = await denoJson(["info", "--json"]) as { npmCache: string };
  const lock = JSON.parse(await Deno.readTextFile(`${root}deno.lock`)) as {
    npm: Record<string, { dependencies?: string[] }>;
  };
  const needed = new Set<string>();
  const add = (key: string) => {
    if (needed.has(key)) return;
    needed.add(key);
    for (const dep of lock.npm[key]?.dependencies ?? []) {
      add(Object.keys(lock.npm).find((k) => k === dep || k.startsWith(`${dep}@`))!);
    }
  };
  add(Object.keys(lock.npm).find((k) => k.startsWith("js-yaml@"))!);
  const names = [...needed].map((key) => key.slice(0, key.indexOf("@", 1)));
  assert.ok(!names.some((n) => n.startsWith("@kubernetes/")), names.join(", "));
  const denoDir = await Deno.makeTempDir({ prefix: "helm-lock-deno-dir-" });
  try {
    for await (const registry of Deno.readDir(npmCache)) {
      for (const name of names) {
        const from = `${npmCache}/${registry.name}/${name}`;
        if (!registry.isDirectory || !(await Deno.stat(from).catch(() => null))) continue;
        const to = `${denoDir}/npm/${registry.name}/${name}`;
        await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
        const cp = await new Deno.Command("cp", { args: ["-R", from, to] }).output();
        assert.equal(cp.code, 0);
      }
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--cached-only", "--no-prompt", "-A", "main.ts", "--version"],
      cwd: root,
      env: { DENO_DIR: denoDir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), `helm-lock ${VERSION}`);
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});
