import assert from "node:assert/strict";
import {
  archiveName,
  assertDenortReachable,
  compileArgs,
  findTarget,
  formatChecksums,
  TARGETS,
  writeChecksums,
} from "../../scripts/compile.ts";
import { VERSION } from "../../lib/version.ts";

const root = new URL("../..", import.meta.url).pathname;

Deno.test("VERSION equals the version in plugin.yaml", async () => {
  const yaml = await Deno.readTextFile(`${root}plugin.yaml`);
  const match = yaml.match(/^version:\s*"([^"]+)"\s*$/m);
  assert.ok(match, "plugin.yaml has a quoted version line");
  assert.equal(match[1], VERSION);
  assert.match(VERSION, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
});

Deno.test("archiveName() names the seven release archives as install-binary.sh expects", () => {
  assert.deepEqual(TARGETS.map((t) => archiveName("1.2.3", t)), [
    "helm-lock-1.2.3-linux-amd64.tar.gz",
    "helm-lock-1.2.3-linux-arm64.tar.gz",
    "helm-lock-1.2.3-linux-amd64-musl.tar.gz",
    "helm-lock-1.2.3-linux-arm64-musl.tar.gz",
    "helm-lock-1.2.3-darwin-amd64.tar.gz",
    "helm-lock-1.2.3-darwin-arm64.tar.gz",
    "helm-lock-1.2.3-windows-amd64.zip",
  ]);
  const script = Deno.readTextFileSync(`${root}install-binary.sh`);
  assert.ok(script.includes("archive_name=helm-lock-$version-$os-$arch$libc.$ext"));
});

Deno.test("findTarget() accepts triples and os-arch names, rejects others", () => {
  assert.equal(findTarget("darwin-arm64").triple, "aarch64-apple-darwin");
  assert.equal(findTarget("x86_64-pc-windows-msvc").os, "windows");
  assert.equal(findTarget("x86_64-unknown-linux-gnu").libc, undefined);
  assert.equal(findTarget("linux-arm64-musl").libc, "musl");
  assert.throws(
    () => findTarget("linux-386"),
    new TypeError(
      "Cannot compile for target 'linux-386': expected one of linux-amd64, linux-arm64, " +
        "linux-amd64-musl, linux-arm64-musl, darwin-amd64, darwin-arm64, windows-amd64",
    ),
  );
});

Deno.test("formatChecksums() sorts by name in sha256sum format", () => {
  const text = formatChecksums(new Map([["b.zip", "22"], ["a.tar.gz", "11"]]));
  assert.equal(text, "11  a.tar.gz\n22  b.zip\n");
});

Deno.test("writeChecksums() output passes sha256sum -c", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/helm-lock-1.0.0-linux-amd64.tar.gz`, "linux");
    await Deno.writeTextFile(`${dir}/helm-lock-1.0.0-windows-amd64.zip`, "windows");
    await Deno.writeTextFile(`${dir}/notes.txt`, "not an archive");
    await writeChecksums(dir);
    const text = await Deno.readTextFile(`${dir}/checksums.txt`);
    assert.equal(text.trimEnd().split("\n").length, 2);
    assert.ok(!text.includes("notes.txt"));
    const check = await new Deno.Command("sha256sum", { args: ["-c", "checksums.txt"], cwd: dir })
      .output();
    assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
    await Deno.writeTextFile(`${dir}/helm-lock-1.0.0-linux-amd64.tar.gz`, "tampered");
    const bad = await new Deno.Command("sha256sum", { args: ["-c", "checksums.txt"], cwd: dir })
      .output();
    assert.notEqual(bad.code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task compile fails fast naming denort when dl.deno.land is unreachable", async () => {
  const out = await Deno.makeTempDir();
  try {
    const started = Date.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "compile", "--target", "linux-amd64", "--out", out],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // The probe has its own timeout; this one only keeps a regression from hanging the suite.
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const result = await child.output();
    clearTimeout(timer);
    const stderr = new TextDecoder().decode(result.stderr);
    const files = (await Array.fromAsync(Deno.readDir(out))).map((e) => e.name).sort();
    if (result.code === 0) {
      // A machine that reaches dl.deno.land builds for real: check what it built.
      assert.deepEqual(files, ["checksums.txt", `helm-lock-${VERSION}-linux-amd64.tar.gz`]);
      return;
    }
    assert.ok(Date.now() - started < 60_000, "failed within a minute");
    assert.match(
      stderr,
      /Cannot compile for x86_64-unknown-linux-gnu: deno compile needs denort from https:\/\/dl\.deno\.land\/release\/v[\d.]+\/denort-x86_64-unknown-linux-gnu\.zip, which is unreachable/,
    );
    assert.deepEqual(files, []);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("assertDenortReachable() gives up on a host that never answers after its timeout", async () => {
  const never = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async () => {
      await never.promise;
      return new Response("late");
    },
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/denort.zip`;
    const started = Date.now();
    await assert.rejects(
      assertDenortReachable(findTarget("linux-amd64"), { url, timeoutMs: 300 }),
      (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.match(
          error.message,
          new RegExp(
            `^Cannot compile for x86_64-unknown-linux-gnu: deno compile needs denort from ${url}, which is unreachable \\(The operation was aborted due to timeout\\)`,
          ),
        );
        return true;
      },
    );
    assert.ok(Date.now() - started < 5_000);
  } finally {
    never.resolve();
    await server.shutdown();
  }
});

Deno.test("assertDenortReachable() passes for a denort in the Deno cache without probing", async () => {
  const denoDir = await Deno.makeTempDir();
  try {
    const target = findTarget("darwin-arm64");
    const dir = `${denoDir}/dl/release/v${Deno.version.deno}`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/denort-${target.triple}.zip`, "cached");
    // An unusable URL proves no request was made.
    await assertDenortReachable(target, { denoDir, url: "http://127.0.0.1:9/never" });
    await assert.rejects(assertDenortReachable(findTarget("linux-arm64"), {
      denoDir,
      url: "http://127.0.0.1:9/never",
    }));
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});

Deno.test({
  name: "the release's plugin source tarball (git archive) holds what helm plugin install needs",
  ignore: !(await Deno.stat(`${root}.git`).then(() => true, () => false)),
  fn: async () => {
    // The same command as .github/workflows/release.yml, on HEAD instead of the tag.
    const archive = await new Deno.Command("git", {
      args: ["archive", "--format=tar", "--prefix=helm-lock/", "HEAD"],
      cwd: root,
      stdout: "piped",
    }).output();
    assert.equal(archive.code, 0);
    const list = new Deno.Command("tar", { args: ["-t"], stdin: "piped", stdout: "piped" }).spawn();
    const writer = list.stdin.getWriter();
    await writer.write(archive.stdout);
    await writer.close();
    const names = new TextDecoder().decode((await list.output()).stdout).split("\n");
    for (
      const needed of [
        "plugin.yaml",
        "install-binary.sh",
        "main.ts",
        "deno.json",
        "deno.lock",
        "lib/version.ts",
      ]
    ) {
      assert.ok(names.includes(`helm-lock/${needed}`), `helm-lock/${needed} is in the tarball`);
    }
  },
});

/** `main.ts` and the modules of `lib/`, as absolute paths. */
function sources(): string[] {
  const files = [`${root}main.ts`];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) walk(`${dir}/${e.name}`);
      else if (e.name.endsWith(".ts")) files.push(`${dir}/${e.name}`);
    }
  };
  walk(`${root}lib`);
  return files;
}

/** The modules that `main.ts` and `lib/` import with a literal `import("…")`, by specifier. */
function dynamicImports(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sources()) {
    const text = Deno.readTextFileSync(file).replace(/typeof import\(/g, "");
    for (const [, name] of text.matchAll(/\bimport\("([^"]+)"\)/g)) {
      if (!name!.startsWith("node:")) found.set(name!, file.slice(root.length));
    }
  }
  return found;
}

/** The modules that `main.ts` and `lib/` import by URL (`import(new URL("./x.ts", …))`), by path. */
function urlImports(): string[] {
  const found = new Set<string>();
  for (const file of sources()) {
    const text = Deno.readTextFileSync(file);
    for (const [, name] of text.matchAll(/\bimport\(\s*new URL\("([^"]+)"/g)) {
      found.add(new URL(name!, `file://${file}`).pathname.slice(root.length));
    }
  }
  return [...found].sort();
}

Deno.test("deno compile embeds the modules lib/ imports only when needed, and what they import", async () => {
  // What shows a module is in the binary: a declaration of the npm package's, or the first
  // line of a module's own doc comment (absent from the binary when it is not embedded; js-yaml
  // itself is imported up front, so a declaration of its would prove nothing).
  const npm: Record<string, string> = { "@kubernetes/client-node": "class KubeConfig" };
  const marker = (name: string, importer: string): string | undefined => {
    if (!name.startsWith(".")) return npm[name];
    const path = new URL(name, `file://${root}${importer}`).pathname;
    return /^\/\*\*\n \* (.+)$/m.exec(Deno.readTextFileSync(path))?.[1];
  };
  const byUrl = urlImports();
  const later = [
    ...[...dynamicImports()].map(([name, importer]) => ({ name, marker: marker(name, importer) })),
    // Imported by URL, which deno compile follows only through --include.
    ...byUrl.map((path) => ({ name: path, marker: marker(`./${path}`, "main.ts") })),
  ];
  // Found by the scan: this test checks something (and a new package needs its marker here).
  assert.ok(later.length > 0, "lib/ imports some module with import()");
  // Imported by lib/kube/client_node.ts alone.
  later.push({ name: "@kubernetes/client-node", marker: npm["@kubernetes/client-node"] });
  assert.deepEqual(later.filter((m) => !m.marker), [], "each module imported later has a marker");
  // The deno binary stands in for denort (no download); the executable is not run here.
  const dir = await Deno.makeTempDir({ prefix: "helm-lock-compile-test-" });
  try {
    const args = compileArgs(Deno.build.target, `${dir}/helm-lock`);
    const included = args.filter((_, i) => args[i - 1] === "--include");
    assert.deepEqual(included.sort(), byUrl, "each module imported by URL is --include'd");
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      env: { DENORT_BIN: Deno.execPath() },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const binary = new TextDecoder("latin1").decode(await Deno.readFile(`${dir}/helm-lock`));
    assert.deepEqual(later.filter((m) => !binary.includes(m.marker!)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
