/**
 * findHelm(): a helm that cannot start is found before any request (issue 27), with exit
 * code 127 and a message naming it and why.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { findHelm } from "../../lib/helm/exec.ts";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";

async function file(path: string, mode: number): Promise<string> {
  await Deno.writeTextFile(path, "#!/bin/sh\necho helm\n");
  await Deno.chmod(path, mode);
  return path;
}

function refuses(env: Record<string, string>, message: string | RegExp): void {
  assert.throws(() => findHelm(env), (e) => {
    assert.ok(e instanceof HelmLockError);
    assert.equal(e.code, ExitCode.HelmNotFound);
    assert.equal(ExitCode.HelmNotFound, 127);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

Deno.test("findHelm() refuses a $HELM_BIN that is missing, a directory, not a file or not executable", async () => {
  const dir = await Deno.makeTempDir();
  const PATH = "/nonexistent";
  refuses(
    { HELM_BIN: "/nonexistent/helm", PATH },
    `Cannot run helm as "/nonexistent/helm": it does not exist; install helm or set $HELM_BIN ` +
      "to its path",
  );
  refuses(
    { HELM_BIN: dir, PATH },
    `Cannot run helm as "${dir}": it is a directory; install helm or set $HELM_BIN to its path`,
  );
  refuses({ HELM_BIN: "/dev/null", PATH }, /"\/dev\/null": it is not a file;/);
  const plain = await file(join(dir, "plain"), 0o644);
  refuses(
    { HELM_BIN: plain, PATH },
    `Cannot run helm as "${plain}": it is not executable; install helm or set $HELM_BIN to its path`,
  );
  // A name without "/" is looked up on PATH, like helm's own $HELM_BIN.
  refuses({ HELM_BIN: "no-such-helm", PATH: dir }, /"no-such-helm": it is not on PATH;/);
});

Deno.test("findHelm() refuses when no helm is on PATH, or every one leads back to helm-lock", async () => {
  const dir = await Deno.makeTempDir();
  refuses(
    { PATH: dir },
    `Cannot run helm as "helm": it is not on PATH; install helm or set $HELM_BIN to its path`,
  );
  // Run from source, helm-lock is deno: a helm that is deno is helm-lock itself.
  const self = join(dir, "helm");
  await Deno.symlink(Deno.execPath(), self);
  refuses({ PATH: dir }, /every helm on PATH lead back to helm-lock/);
  refuses(
    { HELM_BIN: self, PATH: dir },
    /\$HELM_BIN \(".*helm"\) and every helm on PATH lead back/,
  );
});

Deno.test("findHelm() returns a helm that can run, skipping helm-lock itself", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "self"));
  await Deno.mkdir(join(dir, "real"));
  await Deno.symlink(Deno.execPath(), join(dir, "self", "helm"));
  const real = await file(join(dir, "real", "helm"), 0o755);
  const PATH = `${join(dir, "self")}:${join(dir, "real")}`;
  assert.equal(findHelm({ PATH }), real);
  assert.equal(findHelm({ HELM_BIN: real, PATH: "/nonexistent" }), real);
  assert.equal(findHelm({ HELM_BIN: "helm", PATH: join(dir, "real") }), "helm");
  if (Deno.uid() === 0) {
    // Root may run a file any execute bit is set on, not only the owner's.
    const groupOnly = await file(join(dir, "group-only"), 0o654);
    assert.equal(findHelm({ HELM_BIN: groupOnly }), groupOnly);
    assert.equal((await new Deno.Command(groupOnly, { stdout: "null" }).output()).code, 0);
  }
  // A symlink counts as what it points to.
  await Deno.symlink(real, join(dir, "link"));
  assert.equal(findHelm({ HELM_BIN: join(dir, "link") }), join(dir, "link"));
});

/**
 * As an unprivileged user, findHelm()'s verdict on a file is what exec says: only the
 * owner's bits apply to the owner, only the group's to the group. Run as `nobody` through
 * setpriv, each file both checked and really started.
 */
Deno.test({
  name: "findHelm() agrees with exec on owner, group and other execute bits for a user",
  ignore: Deno.uid() !== 0 || !(await exists("/usr/bin/setpriv")),
  fn: async () => {
    const NOBODY = 65534;
    // Under /tmp itself, with its own copy of lib/: the suite's TMPDIR and the checkout may
    // sit below directories that nobody cannot enter.
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "helm-lock-find-helm-" });
    await Deno.chmod(dir, 0o755);
    const lib = new URL("../../lib", import.meta.url).pathname;
    const copy: Array<[string, string[]]> = [["cp", ["-r", lib, dir]], ["chmod", [
      "-R",
      "a+rX",
      dir,
    ]]];
    for (const [cmd, args] of copy) {
      assert.equal((await new Deno.Command(cmd, { args }).output()).code, 0, cmd);
    }
    // [name, mode, uid, gid, whether nobody may run it]
    const cases: Array<[string, number, number, number, boolean]> = [
      ["own-x", 0o700, NOBODY, NOBODY, true],
      ["own-no-x-others-x", 0o655, NOBODY, NOBODY, false],
      ["group-x", 0o750, 0, NOBODY, true],
      ["group-no-x-others-x", 0o705, 0, NOBODY, false],
      ["others-x", 0o701, 0, 0, true],
      ["only-owner-x", 0o700, 0, 0, false],
      ["only-group-x", 0o770, 0, 0, false],
      // nobody is also in group 4242 (a supplementary group): the group's bit is what counts.
      ["supplementary-group-x", 0o710, 0, 4242, true],
      ["supplementary-group-no-x-others-x", 0o701, 0, 4242, false],
    ];
    for (const [name, mode, uid, gid] of cases) {
      await file(join(dir, name), mode);
      await Deno.chown(join(dir, name), uid, gid);
    }
    const script = join(dir, "check.ts");
    await Deno.writeTextFile(
      script,
      `import { findHelm } from "./lib/helm/exec.ts";
const out: Record<string, [boolean, boolean]> = {};
for (const name of ${JSON.stringify(cases.map((c) => c[0]))}) {
  const path = ${JSON.stringify(dir)} + "/" + name;
  let found = true;
  try { findHelm({ HELM_BIN: path }); } catch { found = false; }
  let runs = true;
  try { await new Deno.Command(path, { stdout: "null" }).output(); } catch { runs = false; }
  out[name] = [found, runs];
}
console.log(JSON.stringify(out));
`,
    );
    const denoDir = join(dir, "deno");
    await Deno.mkdir(denoDir);
    await Deno.chown(denoDir, NOBODY, NOBODY);
    const res = await new Deno.Command("/usr/bin/setpriv", {
      args: [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        "--groups=4242",
        Deno.execPath(),
        "run",
        "--quiet",
        "--no-lock",
        "--no-config",
        "--allow-all",
        script,
      ],
      env: { DENO_DIR: denoDir, HOME: denoDir, PATH: "/usr/bin:/bin" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    await Deno.remove(dir, { recursive: true });
    const stderr = new TextDecoder().decode(res.stderr);
    assert.equal(res.code, 0, stderr);
    const seen = JSON.parse(new TextDecoder().decode(res.stdout));
    for (const [name, , , , runs] of cases) {
      assert.deepEqual(seen[name], [runs, runs], name);
    }
  },
});

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}
