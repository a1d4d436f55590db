import assert from "node:assert/strict";
import { join } from "node:path";
import { firstOnPath, resolveHelm } from "../../lib/helm/nesting.ts";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";

async function executable(path: string): Promise<string> {
  await Deno.writeTextFile(path, "#!/bin/sh\n");
  await Deno.chmod(path, 0o755);
  return path;
}

Deno.test("resolveHelm() skips a $HELM_BIN and a PATH helm that lead back to helm-lock", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "self"));
  await Deno.mkdir(join(dir, "real"));
  const launcher = await executable(join(dir, "self", "helm-lock"));
  await Deno.symlink(launcher, join(dir, "self", "helm"));
  const real = await executable(join(dir, "real", "helm"));
  const self = new Set([await Deno.realPath(launcher)]);
  const PATH = `${join(dir, "self")}:${join(dir, "real")}`;

  assert.equal(resolveHelm({ HELM_BIN: launcher, PATH }, self), real);
  assert.equal(resolveHelm({ PATH }, self), real);
  assert.equal(resolveHelm({ HELM_BIN: "helm-lock", PATH }, self), real);
  // Nothing to skip: the user's spelling is kept.
  assert.equal(resolveHelm({ HELM_BIN: real, PATH }, new Set()), real);
  assert.equal(resolveHelm({ PATH }, new Set()), join(dir, "self", "helm"));
  assert.equal(resolveHelm({ HELM_BIN: "/opt/missing/helm", PATH }, self), "/opt/missing/helm");
  assert.equal(resolveHelm({ PATH: "/nonexistent" }, self), "helm");
  assert.equal(resolveHelm({ HELM_BIN: "", PATH: "/nonexistent" }, self), "helm");
  assert.throws(
    () => resolveHelm({ HELM_BIN: launcher, PATH: join(dir, "self") }, self),
    (err) =>
      err instanceof HelmLockError && err.code === ExitCode.HelmNotFound &&
      /\$HELM_BIN \(".*helm-lock"\) and every helm on PATH lead back to helm-lock/.test(
        err.message,
      ),
  );
});

Deno.test("firstOnPath() and resolveHelm() find executable files only, in PATH order", async () => {
  const dir = await Deno.makeTempDir();
  for (const d of ["none", "dir", "plain", "one", "two"]) await Deno.mkdir(join(dir, d));
  await Deno.mkdir(join(dir, "dir", "tool"));
  await Deno.writeTextFile(join(dir, "plain", "tool"), "not executable");
  const one = await executable(join(dir, "one", "tool"));
  const two = await executable(join(dir, "two", "tool"));
  const PATH = ["none", "dir", "plain", "one", "two"].map((d) => join(dir, d)).join(":");
  assert.equal(firstOnPath("tool", PATH), one);
  // Every match, in order: the second when the first is helm-lock, none after it.
  const [realOne, realTwo] = [await Deno.realPath(one), await Deno.realPath(two)];
  assert.equal(resolveHelm({ HELM_BIN: "tool", PATH }, new Set([realOne])), two);
  assert.throws(
    () => resolveHelm({ HELM_BIN: "tool", PATH }, new Set([realOne, realTwo])),
    (err) => err instanceof HelmLockError && err.code === ExitCode.HelmNotFound,
  );
  assert.equal(firstOnPath("absent", PATH), undefined);
  assert.equal(firstOnPath("tool", undefined), undefined);
  await Deno.remove(dir, { recursive: true });
});

/** `self().nesting` in a new process (it is read once) whose `HELM_LOCK_NESTING` is `marker`. */
async function nestingOf(marker?: string): Promise<unknown> {
  const nesting = new URL("../../lib/helm/nesting.ts", import.meta.url).href;
  const code = `import { self } from "${nesting}"; console.log(JSON.stringify(self().nesting));`;
  const { HELM_LOCK_NESTING: _, ...env } = Deno.env.toObject();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: marker === undefined ? env : { ...env, HELM_LOCK_NESTING: marker },
    clearEnv: true,
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("self() reads the marker from the environment and treats a broken one as absent", async () => {
  assert.deepEqual(await nestingOf(), { self: [], depth: 0 });
  assert.deepEqual(await nestingOf(""), { self: [], depth: 0 });
  assert.deepEqual(await nestingOf("{not json"), { self: [], depth: 0 });
  const marker = {
    spawner: 42,
    helm: "/usr/local/bin/helm",
    self: ["/opt/helm-lock"],
    depth: 1,
    lock: { namespace: "prod", release: "web", identity: "runner-1-42-00" },
  };
  assert.deepEqual(await nestingOf(JSON.stringify(marker)), marker);
  // A lock without all its fields is no lock.
  const { lock: _, ...unlocked } = marker;
  assert.deepEqual(
    await nestingOf(JSON.stringify({ ...marker, lock: { release: "web" } })),
    unlocked,
  );
});
