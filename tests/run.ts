// deno-lint-ignore-file no-console
/**
 * `deno task test`: builds or fetches the test binaries (cached), starts one control plane
 * for the whole run, runs `deno test` against it and stops it again, also when tests fail
 * or the run is interrupted. Arguments are passed to `deno test` (default: `tests/`). At the
 * end it prints how long `deno test` took and its slowest test files (on stderr), then
 * Deno's closing line restated as `tests: N passed, N failed, N skipped` (on stdout).
 *
 * With `HELM_LOCK_TEST_KUBECONFIG` set, that existing cluster is used instead and no
 * control plane is started.
 *
 * @module
 */
import { ensureBinaries, kubernetesVersion } from "./controlplane/binaries.ts";
import { type ControlPlane, startControlPlane } from "./controlplane/controlplane.ts";
import { FileTimes, timingSummary } from "./support/file_timing.ts";

const log = (msg: string) => console.error(`test-env: ${msg}`);

/** Deno's closing line, e.g. `FAILED | 3 passed (2 steps) | 1 failed | 2 ignored (9s)`. */
function summarize(output: string): string | undefined {
  // deno-lint-ignore no-control-regex
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const line = plain.split("\n").reverse().find((l) => /^(ok|FAILED) \| \d+ passed/.test(l));
  if (!line) return undefined;
  const count = (word: string) => line.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? "0";
  // The plain form CI reads, whatever the runner.
  return `tests: ${count("passed")} passed, ${count("failed")} failed, ${count("ignored")} skipped`;
}

const external = Deno.env.get("HELM_LOCK_TEST_KUBECONFIG");
const bins = await ensureBinaries({ controlPlane: !external, helmfile: true, log });
const env: Record<string, string> = {
  HELM_LOCK_TEST_HELM3: bins.helm3,
  HELM_LOCK_TEST_HELM4: bins.helm4,
  HELM_LOCK_TEST_HELMFILE: bins.helmfile ?? "",
};

// A temp directory of the run's own (TMPDIR for the tests and every helm-lock they start), removed
// at the end: killed holders leave their client-go cache directories there, and clean runs keep
// one per API server (lib/fence/kube_cache.ts), as they would on a user's machine.
const tmp = await Deno.makeTempDir({ prefix: "helm-lock-tests-" });
env.TMPDIR = tmp;
let plane: ControlPlane | undefined;
let code = 1;
let child: Deno.ChildProcess | undefined;
const onSignal = (signal: Deno.Signal) => () => {
  log(`${signal}: stopping the tests and the control plane`);
  try {
    child?.kill(signal);
  } catch { /* not running */ }
};
const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => [s, onSignal(s)] as const);
for (const [s, h] of handlers) Deno.addSignalListener(s, h);

try {
  if (external) {
    log(`using the existing cluster of HELM_LOCK_TEST_KUBECONFIG=${external}`);
  } else {
    const started = performance.now();
    plane = await startControlPlane({ kubeApiserver: bins.kubeApiserver!, etcd: bins.etcd! });
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    log(`kube-apiserver ${await kubernetesVersion()} + etcd ready at ${plane.server} in ${secs} s`);
    env.HELM_LOCK_TEST_KUBECONFIG = plane.kubeconfig;
    env.HELM_LOCK_TEST_CA_CERT = plane.ca.cert;
    env.HELM_LOCK_TEST_CA_KEY = plane.ca.key;
  }
  const args = Deno.args.length > 0 ? Deno.args : ["tests/"];
  const testsStarted = performance.now();
  child = new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  // Tee the runner's output so its closing line can be restated in the plain form, and time
  // each test file by when its header goes by.
  let tailText = "";
  const times = new FileTimes();
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    const text = decoder.decode(chunk, { stream: true });
    times.feed(text, performance.now());
    tailText = (tailText + text).slice(-4096);
  }
  times.end(performance.now());
  code = (await child.status).code;
  // The budget on stderr, before the plain closing line (stdout as it always was).
  if (args.includes("--parallel")) log("timing: no per-file times under --parallel");
  else for (const line of timingSummary(times, testsStarted, performance.now())) log(line);
  const summary = summarize(tailText);
  if (summary) console.log(summary);
} finally {
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  if (plane) {
    await plane.stop();
    log("control plane stopped");
  }
  await Deno.remove(tmp, { recursive: true }).catch((err) => log(`cannot remove ${tmp}: ${err}`));
}
Deno.exit(code);
