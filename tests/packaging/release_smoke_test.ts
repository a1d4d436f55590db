/**
 * Release smoke test (issue 16): `scripts/compile.ts` runs every archive the build host can run
 * before anything is published, and the release workflow runs the whole suite first.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { findTarget, runnableHere, smokeTest } from "../../scripts/compile.ts";
import { execOk } from "../support/plugin_release.ts";
import { withTempDir } from "../support/temp.ts";
import { VERSION } from "../../lib/version.ts";

const root = new URL("../..", import.meta.url).pathname;

/** A tar.gz in `dir` holding `helm-lock` with `content` and `mode`. */
async function archive(dir: string, content: string, mode = 0o755): Promise<string> {
  const stage = await Deno.makeTempDir({ dir });
  await Deno.writeTextFile(join(stage, "helm-lock"), content);
  await Deno.chmod(join(stage, "helm-lock"), mode);
  const path = join(dir, `helm-lock-${VERSION}-linux-amd64.tar.gz`);
  await execOk("tar", ["-czf", path, "-C", stage, "helm-lock"]);
  return path;
}

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir("helm-lock-smoke-test-", fn);

Deno.test("smokeTest() passes a binary that answers --version and --help", () =>
  withTemp(async (dir) => {
    const good = await archive(
      dir,
      `#!/bin/sh\ncase $1 in --version) echo "helm-lock ${VERSION}" ;; --help) echo "helm-lock ${VERSION}: help" ;; *) exit 9 ;; esac\n`,
    );
    await smokeTest(good);
  }));

Deno.test("smokeTest() refuses a binary that prints another version (deno standing in for denort)", () =>
  withTemp(async (dir) => {
    // What `deno compile` makes when the runtime is not a denort: plain deno.
    const path = await archive(dir, `#!/bin/sh\nexec "${Deno.execPath()}" "$@"\n`);
    await assert.rejects(
      smokeTest(path),
      new RegExp(
        `^Error: Cannot publish helm-lock-${VERSION}-linux-amd64\\.tar\\.gz: expected 'helm-lock --version' ` +
          `to exit 0 with 'helm-lock ${VERSION}', found exit 0: deno \\d`,
      ),
    );
  }));

Deno.test("smokeTest() refuses a binary that cannot start, naming why", () =>
  withTemp(async (dir) => {
    const crash = await archive(dir, "#!/bin/sh\necho 'cannot load libfoo.so' >&2\nexit 127\n");
    await assert.rejects(
      smokeTest(crash),
      /expected 'helm-lock --version' to exit 0 with 'helm-lock [^']+', found exit 127: cannot load libfoo\.so$/,
    );
    const garbage = await archive(dir, "#!/bin/sh\n", 0o644);
    await assert.rejects(
      smokeTest(garbage),
      /^Error: Cannot publish .*: expected 'helm-lock --version' to start, found: /,
    );
  }));

Deno.test("runnableHere() smoke-tests the host's own targets, musl included, and no others", () => {
  const arch = Deno.build.arch === "x86_64" ? "amd64" : "arm64";
  const other = arch === "amd64" ? "arm64" : "amd64";
  if (Deno.build.os === "linux") {
    assert.equal(runnableHere(findTarget(`linux-${arch}`)), true);
    assert.equal(runnableHere(findTarget(`linux-${arch}-musl`)), true);
  }
  assert.equal(runnableHere(findTarget(`linux-${other}`)), false);
  assert.equal(runnableHere(findTarget("windows-amd64")), Deno.build.os === "windows");
});

Deno.test("the release workflow runs deno task ok and publishes only after it", async () => {
  const yaml = await Deno.readTextFile(join(root, ".github/workflows/release.yml"));
  assert.match(
    yaml,
    /^ {2}ok:\n(?: {4}.*\n| *\n| {6}.*\n)*? {6}- run: sudo env "PATH=\$PATH" "HOME=\$HOME" deno task ok$/m,
  );
  assert.match(yaml, /^ {2}release:\n {4}needs: \[ok, compile\]$/m);
  assert.match(yaml, /^ {2}compile:\n {4}needs: ok$/m);
});
