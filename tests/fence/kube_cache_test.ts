import assert from "node:assert/strict";
import { join } from "node:path";
import { KubeCache } from "../../lib/fence/kube_cache.ts";

Deno.test("KubeCache makes a directory of the run's own in $TMPDIR and removes it with its content", async () => {
  const tmp = await Deno.makeTempDir();
  const before = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", tmp);
  try {
    const cache = KubeCache.make();
    assert.ok(!("off" in cache));
    assert.equal(join(cache.path, ".."), tmp);
    assert.match(cache.path, /helm-lock-kube-cache-/);
    const other = KubeCache.make();
    assert.ok(!("off" in other) && other.path !== cache.path);
    // What helm writes there: client-go's discovery and http directories.
    await Deno.mkdir(join(cache.path, "discovery", "127.0.0.1_40000"), { recursive: true });
    await Deno.writeTextFile(join(cache.path, "discovery", "127.0.0.1_40000", "x.json"), "{}");
    await Promise.all([cache.remove(), cache.remove()]);
    await assert.rejects(Deno.stat(cache.path), Deno.errors.NotFound);
    await other.remove();
    assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), []);
  } finally {
    if (before === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", before);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("KubeCache falls back to /tmp when $TMPDIR cannot be written", async () => {
  const before = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", "/nonexistent/helm-lock-test");
  try {
    const cache = KubeCache.make();
    assert.ok(!("off" in cache));
    assert.ok(cache.path.startsWith("/tmp/helm-lock-kube-cache-"), cache.path);
    await cache.remove();
  } finally {
    if (before === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", before);
  }
});

Deno.test("KubeCache says why when no temp directory may be written (the launcher's --allow-write)", async () => {
  const dir = await Deno.makeTempDir();
  const script = join(dir, "make.ts");
  const module = new URL("../../lib/fence/kube_cache.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { KubeCache } from ${JSON.stringify(module)};
const c = KubeCache.make();
console.log("off" in c ? c.off : "made " + c.path);`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--allow-read", "--allow-env", `--allow-write=${dir}`, script],
      env: { TMPDIR: "/nonexistent" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /^\/tmp: .*write access/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
