/**
 * The GitHub Action (issue 16): action.yml's install step, run as the runner runs it against
 * a loopback mirror: a pinned version, checksum-verified, onto the job's PATH; tampering refused.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { exists } from "../../scripts/_util.ts";
import {
  both,
  exec,
  fakeBinary,
  hostArchiveName,
  releaseFiles,
  serveMirror,
} from "../support/plugin_release.ts";
import { withTempDir } from "../support/temp.ts";
import { shellcheck } from "../support/debian_packages.ts";
import { VERSION } from "../../lib/version.ts";

const root = new URL("../..", import.meta.url).pathname;

/** The runner's side: its files and the action's step, with `inputs` as action.yml maps them. */
async function runAction(dir: string, inputs: Record<string, string>) {
  const temp = join(dir, "runner-temp");
  await Deno.mkdir(temp, { recursive: true });
  const githubPath = join(dir, "github-path");
  const githubOutput = join(dir, "github-output");
  await Deno.writeTextFile(githubPath, "");
  await Deno.writeTextFile(githubOutput, "");
  const yaml = await Deno.readTextFile(join(root, "action.yml"));
  const run = yaml.match(/^ {6}run: (.*)$/m)?.[1];
  assert.equal(run, 'sh "$GITHUB_ACTION_PATH/scripts/action_install.sh"');
  const env: Record<string, string> = {
    RUNNER_TEMP: temp,
    GITHUB_PATH: githubPath,
    GITHUB_OUTPUT: githubOutput,
    GITHUB_ACTION_PATH: root,
    HELM_LOCK_DOWNLOAD_RETRIES: "0",
  };
  const names: Record<string, string> = {
    version: "HELM_LOCK_VERSION",
    checksums: "HELM_LOCK_PINNED_SUMS",
    "download-url": "HELM_LOCK_DOWNLOAD_URL",
  };
  for (const [input, value] of Object.entries(inputs)) {
    const name = names[input]!;
    assert.ok(yaml.includes(`${name}: \${{ inputs.${input} }}`), `action.yml maps ${input}`);
    env[name] = value;
  }
  const out = await exec("bash", ["-e", "-c", run!], { env });
  const path = (await Deno.readTextFile(githubPath)).trim();
  return { out, path, output: await Deno.readTextFile(githubOutput), temp };
}

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir("helm-lock-action-", fn);

Deno.test("action.yml installs the pinned version, verified, and puts it on PATH", () =>
  withTemp(async (dir) => {
    await using mirror = serveMirror(await releaseFiles(fakeBinary("release")));
    const { out, path, output, temp } = await runAction(dir, {
      version: `v${VERSION}`,
      "download-url": mirror.url,
    });
    assert.equal(out.code, 0, both(out));
    assert.match(out.stderr, new RegExp(`verified sha256 of ${hostArchiveName()}`));
    assert.equal(path, join(temp, `helm-lock-${VERSION}`, "bin"));
    assert.equal(output, `path=${path}\n`);
    assert.equal((await exec(join(path, "helm-lock"), [])).stdout, "release\n");
    assert.ok(mirror.requests.every((p) => p.startsWith(`/v${VERSION}/`)));
  }));

Deno.test("action.yml refuses a tampered archive and never falls back to deno", () =>
  withTemp(async (dir) => {
    await using mirror = serveMirror(
      await releaseFiles(fakeBinary("evil"), { tamper: true }),
    );
    const { out, path, temp } = await runAction(dir, {
      version: VERSION,
      "download-url": mirror.url,
    });
    assert.equal(out.code, 1);
    assert.match(out.stderr, /Checksum mismatch for .*: refusing to install/);
    assert.equal(path, "");
    assert.equal(await exists(join(temp, `helm-lock-${VERSION}`, "bin", "helm-lock")), false);

    // A 404 is no reason to run from source either (deno is on PATH here).
    mirror.files.clear();
    const missing = await runAction(join(dir, "again"), {
      version: VERSION,
      "download-url": mirror.url,
    });
    assert.equal(missing.out.code, 1);
    assert.match(
      missing.out.stderr,
      /helm-lock: error: Cannot download .*: set HELM_LOCK_DOWNLOAD_URL to a mirror or HELM_LOCK_ARCHIVE to a local archive/,
    );
    assert.doesNotMatch(missing.out.stderr, /launcher/);
  }));

Deno.test("action.yml verifies against pinned checksums, not the mirror's", () =>
  withTemp(async (dir) => {
    const trusted = await releaseFiles(fakeBinary("release"));
    const pinned = new TextDecoder().decode(trusted.get("checksums.txt")!);
    // The mirror was replaced as a whole: its archive and checksums.txt agree with each other.
    await using mirror = serveMirror(await releaseFiles(fakeBinary("evil")));
    const inputs = { version: VERSION, "download-url": mirror.url, checksums: pinned };
    const refused = await runAction(dir, inputs);
    assert.equal(refused.out.code, 1);
    assert.match(refused.out.stderr, /Checksum mismatch/);
    assert.ok(!mirror.requests.some((p) => p.endsWith("/checksums.txt")));
    mirror.files.set(hostArchiveName(), trusted.get(hostArchiveName())!);
    const ok = await runAction(join(dir, "again"), inputs);
    assert.equal(ok.out.code, 0, both(ok.out));
    assert.equal((await exec(join(ok.path, "helm-lock"), [])).stdout, "release\n");
  }));

Deno.test("action.yml refuses a version that is not a release", () =>
  withTemp(async (dir) => {
    const { out } = await runAction(dir, { version: "latest" });
    assert.equal(out.code, 1);
    assert.match(
      out.stderr,
      /Cannot install helm-lock version 'latest': expected a release version such as 0\.1\.0/,
    );
  }));

Deno.test("scripts/action_install.sh is shellcheck clean", async () => {
  const { cmd, env } = await shellcheck();
  const out = await exec(cmd, ["-s", "sh", "scripts/action_install.sh"], { env });
  assert.equal(out.code, 0, both(out));
});
