// deno-lint-ignore-file no-console
/**
 * `deno task test`: fetches helm, builds (once, cached) and starts one control plane for the
 * whole run, type-checks the test files once, then runs them in several `deno test` processes
 * at once (tests/support/test_pool.ts) and stops everything again, also when tests fail or
 * the run is interrupted. Each process's output is printed whole when it ends. At the end it
 * prints the wall time and the slowest test files (on stderr), then the closing counts as
 * `tests: N passed, N failed, N skipped` (on stdout).
 *
 * Arguments: test files or folders (default: `tests/`). Arguments with a flag among them
 * (`--filter x`) go to one `deno test` process as they are.
 *
 * `HELM_LOCK_TEST_JOBS` sets how many processes run at once (default 4). With
 * `HELM_LOCK_TEST_KUBECONFIG` set, that existing cluster is used instead, no control plane is
 * started, and files run one at a time (request counts are then the whole server's).
 *
 * @module
 */
import { join, relative } from "node:path";
import {
  ensureControlPlane,
  ensureHelmfile,
  ensureHelms,
  kubernetesVersion,
} from "./controlplane/binaries.ts";
import { type ControlPlane, startControlPlane } from "./controlplane/controlplane.ts";
import { FileTimes, timingSummary } from "./support/file_timing.ts";
import {
  type Batch,
  closingCounts,
  type Counts,
  planBatches,
  runPool,
} from "./support/test_pool.ts";

const log = (msg: string) => console.error(`test-env: ${msg}`);
const root = join(import.meta.dirname!, "..");
const started = performance.now();

/** The `*_test.ts` files under `path` (a file or a folder), relative to the repository. */
async function testFiles(path: string): Promise<string[]> {
  const info = await Deno.stat(path);
  if (info.isFile) return [relative(root, join(Deno.cwd(), path))];
  const found: string[] = [];
  for await (const entry of Deno.readDir(path)) {
    const child = join(path, entry.name);
    if (entry.isDirectory) found.push(...await testFiles(child));
    else if (entry.name.endsWith("_test.ts")) found.push(relative(root, join(Deno.cwd(), child)));
  }
  return found.sort();
}

const external = Deno.env.get("HELM_LOCK_TEST_KUBECONFIG");
const jobsSetting = Deno.env.get("HELM_LOCK_TEST_JOBS") ?? "4";
if (!/^[1-9]\d*$/.test(jobsSetting)) {
  // A NaN here would start no process at all and report a run of no tests as passed.
  console.error(
    `test-env: HELM_LOCK_TEST_JOBS: expected a whole number from 1, found "${jobsSetting}"`,
  );
  Deno.exit(2);
}
const jobs = external ? 1 : Number(jobsSetting);
const env: Record<string, string> = {};
// A temp directory of the run's own (TMPDIR for the tests and every helm-lock they start), removed
// at the end: killed holders leave their client-go cache directories there, and clean runs keep
// one per API server (lib/fence/kube_cache.ts), as they would on a user's machine.
const tmp = await Deno.makeTempDir({ prefix: "helm-lock-tests-" });
env.TMPDIR = tmp;

let plane: ControlPlane | undefined;
let stopping = false;
const children = new Set<Deno.ChildProcess>();
const onSignal = (signal: Deno.Signal) => () => {
  log(`${signal}: stopping the tests and the control plane`);
  stopping = true;
  for (const child of children) {
    try {
      child.kill(signal);
    } catch { /* not running */ }
  }
};
const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => [s, onSignal(s)] as const);
for (const [s, h] of handlers) Deno.addSignalListener(s, h);

/** Runs `deno` with `args`; its stdout and stderr as one text, in the order they came. */
async function deno(args: string[], times?: FileTimes): Promise<{ code: number; text: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>, timed: boolean) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const part = decoder.decode(chunk, { stream: true });
      text += part;
      if (timed) times?.feed(part, performance.now());
    }
  };
  await Promise.all([pump(child.stdout, true), pump(child.stderr, false)]);
  times?.end(performance.now());
  const { code } = await child.status;
  children.delete(child);
  return { code, text };
}

let code = 1;
let cluster: Promise<void> = Promise.resolve();
try {
  const args = Deno.args.length > 0 ? Deno.args : ["tests/"];
  const passThrough = args.some((a) => a.startsWith("-"));
  const files = passThrough ? [] : (await Promise.all(args.map(testFiles))).flat();

  const helms = await ensureHelms(log);
  env.HELM_LOCK_TEST_HELM3 = helms.helm3;
  env.HELM_LOCK_TEST_HELM4 = helms.helm4;

  // The cluster and helmfile come while the unit tests run; helmfile's first compile after the
  // control plane's, since both compile Go (its download overlaps the control plane's build).
  cluster = (async () => {
    if (external) {
      log(`using the existing cluster of HELM_LOCK_TEST_KUBECONFIG=${external}`);
      env.HELM_LOCK_TEST_KUBECONFIG = external;
      return;
    }
    const bins = await ensureControlPlane(log);
    const since = performance.now();
    plane = await startControlPlane(bins);
    const secs = ((performance.now() - since) / 1000).toFixed(1);
    log(`kube-apiserver ${await kubernetesVersion()} + etcd ready at ${plane.server} in ${secs} s`);
    env.HELM_LOCK_TEST_KUBECONFIG = plane.kubeconfig;
    env.HELM_LOCK_TEST_CA_CERT = plane.ca.cert;
    env.HELM_LOCK_TEST_CA_KEY = plane.ca.key;
    env.HELM_LOCK_TEST_AUDIT_LOG = plane.auditLog;
  })();
  // Built only for a run that has the helmfile test: a single other file does not wait for (or
  // start) a 7-minute first build.
  const batches = planBatches(files);
  const helmfile = passThrough || batches.some((b) => b.needs === "helmfile")
    ? Promise.all([ensureHelmfile(log, cluster), cluster]).then(([bin]) => {
      env.HELM_LOCK_TEST_HELMFILE = bin;
    })
    : Promise.resolve();
  cluster.catch(() => {});
  helmfile.catch(() => {});

  if (passThrough) {
    await helmfile;
    const out = await deno(["test", "--allow-all", ...args]);
    console.log(out.text);
    const counts = closingCounts(out.text);
    if (counts) {
      console.log(
        `tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.ignored} skipped`,
      );
    }
    code = out.code;
  } else {
    // One type check for all files (cached by Deno): the processes then start unchecked.
    const check = await deno(["check", ...files]);
    if (check.code !== 0) {
      console.log(check.text);
      throw new Error("the test files do not type-check");
    }
    const ready = { helm: Promise.resolve(), cluster, helmfile };
    const fileTimes = new Map<string, number>();
    let done = 0;
    const runBatch = async (batch: Batch) => {
      const name = batch.files.length === 1
        ? batch.files[0]!
        : `${batch.files.length} unit test files`;
      try {
        await ready[batch.needs];
      } catch (e) {
        return { name, code: 1, counts: undefined, error: `${batch.needs} not ready: ${e}` };
      }
      if (stopping) return { name, code: 1, counts: undefined, error: "interrupted" };
      const since = performance.now();
      const times = new FileTimes();
      const out = await deno(["test", "--allow-all", "--no-check", ...batch.files], times);
      const ms = performance.now() - since;
      if (batch.files.length === 1) fileTimes.set(batch.files[0]!, ms);
      else for (const [file, t] of times.files) fileTimes.set(file, t);
      console.log(out.text);
      done++;
      const verdict = out.code === 0 ? "ok" : `FAILED (exit ${out.code})`;
      log(`${verdict} in ${(ms / 1000).toFixed(1)} s: ${name} (${done} of ${batches.length})`);
      return { name, code: out.code, counts: closingCounts(out.text), error: undefined };
    };
    const results = await runPool(batches, jobs, runBatch);
    const total: Counts = { passed: 0, failed: 0, ignored: 0 };
    for (const r of results) {
      if (r.error) log(`${r.name}: ${r.error}`);
      else if (!r.counts) {
        log(`${r.name}: deno test ended (exit ${r.code}) without its closing line`);
      }
      for (const k of ["passed", "failed", "ignored"] as const) total[k] += r.counts?.[k] ?? 0;
    }
    for (const line of timingSummary(fileTimes, performance.now() - started, jobs)) log(line);
    console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.ignored} skipped`);
    code = results.every((r) => r.code === 0) ? 0 : 1;
  }
} catch (e) {
  log(`${e instanceof Error ? e.message : e}`);
  code = 1;
} finally {
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  await cluster.catch(() => {}); // a control plane still starting is stopped too
  if (plane) {
    await plane.stop();
    log("control plane stopped");
  }
  await Deno.remove(tmp, { recursive: true }).catch((err) => log(`cannot remove ${tmp}: ${err}`));
}
Deno.exit(code);
