import assert from "node:assert/strict";
import { join } from "node:path";
import {
  firstOnPath,
  NESTING_ENV,
  onPath,
  readNesting,
  resolveHelm,
} from "../../lib/helm/nesting.ts";
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

Deno.test("firstOnPath() is onPath()'s first match: executable files only, in PATH order", async () => {
  const dir = await Deno.makeTempDir();
  for (const d of ["none", "dir", "plain", "one", "two"]) await Deno.mkdir(join(dir, d));
  await Deno.mkdir(join(dir, "dir", "tool"));
  await Deno.writeTextFile(join(dir, "plain", "tool"), "not executable");
  const one = await executable(join(dir, "one", "tool"));
  const two = await executable(join(dir, "two", "tool"));
  const PATH = ["none", "dir", "plain", "one", "two"].map((d) => join(dir, d)).join(":");
  assert.equal(firstOnPath("tool", PATH), one);
  assert.deepEqual(onPath("tool", PATH), [one, two]);
  assert.equal(firstOnPath("absent", PATH), undefined);
  assert.equal(firstOnPath("tool", undefined), undefined);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readNesting() reads the marker and treats a broken one as absent", () => {
  assert.deepEqual(readNesting({}), { self: [], depth: 0 });
  assert.deepEqual(readNesting({ [NESTING_ENV]: "{not json" }), { self: [], depth: 0 });
  const marker = {
    spawner: 42,
    helm: "/usr/local/bin/helm",
    self: ["/opt/helm-lock"],
    depth: 1,
    lock: { namespace: "prod", release: "web", identity: "runner-1-42-00" },
  };
  assert.deepEqual(readNesting({ [NESTING_ENV]: JSON.stringify(marker) }), marker);
  assert.equal(
    readNesting({ [NESTING_ENV]: JSON.stringify({ ...marker, lock: { release: "web" } }) }).lock,
    undefined,
  );
});
