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

/** Runs `fn` with `$TMPDIR` set to a directory of its own, removed afterwards. */
async function inTmpDir(fn: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir();
  const before = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", tmp);
  try {
    await fn(tmp);
  } finally {
    if (before === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", before);
    await Deno.remove(tmp, { recursive: true });
  }
}

const SERVER = "https://10.0.0.1:6443";

function made(): KubeCache {
  const cache = KubeCache.make();
  assert.ok(!("off" in cache));
  return cache;
}

Deno.test("KubeCache keeps a clean run's directory and port for the next run against the same server, once", async () => {
  await inTmpDir(async (tmp) => {
    assert.equal(KubeCache.claim(SERVER), undefined, "nothing kept yet");
    const first = made();
    await Deno.writeTextFile(join(first.path, "servergroups.json"), "{}");
    await first.keep(SERVER, 41234);
    await assert.rejects(Deno.stat(first.path), Deno.errors.NotFound);
    // Another server's runs do not see it.
    assert.equal(KubeCache.claim("https://10.0.0.2:6443"), undefined);
    const claimed = KubeCache.claim(SERVER);
    assert.ok(claimed);
    assert.equal(claimed.port, 41234);
    assert.notEqual(claimed.cache.path, first.path);
    assert.equal(await Deno.readTextFile(join(claimed.cache.path, "servergroups.json")), "{}");
    // Claimed: the next run finds nothing, until this one keeps it again.
    assert.equal(KubeCache.claim(SERVER), undefined);
    await claimed.cache.remove();
    assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), []);
  });
});

Deno.test("KubeCache keeps only the first of two runs' directories; the other is removed", async () => {
  await inTmpDir(async (tmp) => {
    const a = made();
    const b = made();
    await Deno.writeTextFile(join(a.path, "a"), "");
    await Deno.writeTextFile(join(b.path, "b"), "");
    await a.keep(SERVER, 40001);
    await b.keep(SERVER, 40002);
    assert.equal((await Array.fromAsync(Deno.readDir(tmp))).length, 1);
    const claimed = KubeCache.claim(SERVER);
    assert.equal(claimed?.port, 40001);
    await claimed?.cache.remove();
  });
});

Deno.test("KubeCache claims no kept directory that is not its own kind: open mode, a link, no port", async () => {
  await inTmpDir(async (tmp) => {
    const kept = join(tmp, `helm-lock-kube-cache-kept-${Deno.uid()}-10.0.0.1_6443_`);
    const cases: Array<[string, () => Promise<void>]> = [
      ["readable by others", async () => {
        await Deno.mkdir(kept, { mode: 0o755 });
        await Deno.chmod(kept, 0o755);
        await Deno.writeTextFile(join(kept, "helm-lock-port"), "40000\n");
      }],
      ["a symbolic link", async () => {
        const target = await Deno.makeTempDir({ dir: tmp });
        await Deno.writeTextFile(join(target, "helm-lock-port"), "40000\n");
        await Deno.symlink(target, kept);
      }],
      ["without its port", async () => {
        await Deno.mkdir(kept, { mode: 0o700 });
      }],
      ["with a port out of range", async () => {
        await Deno.mkdir(kept, { mode: 0o700 });
        await Deno.writeTextFile(join(kept, "helm-lock-port"), "70000\n");
      }],
    ];
    for (const [what, plant] of cases) {
      await plant();
      assert.equal(KubeCache.claim(SERVER), undefined, what);
      await assert.rejects(Deno.lstat(kept), Deno.errors.NotFound, `${what}: still there`);
    }
    // And a genuine one is claimed: the cases above failed for their own reason.
    const cache = made();
    await cache.keep(SERVER, 40000);
    assert.equal(KubeCache.claim(SERVER)?.port, 40000);
  });
});
