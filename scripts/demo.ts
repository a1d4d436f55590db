// deno-lint-ignore-file no-console
/**
 * `deno task demo`: shows on a local control plane the problem helm-lock fixes and how it
 * fixes it, with the real helm. Starts everything it needs and stops it again.
 *
 * Usage: deno task demo [--helm 3|4]
 *
 * @module
 */
import { ensureBinaries } from "../tests/controlplane/binaries.ts";
import { startControlPlane } from "../tests/controlplane/controlplane.ts";
import { lines } from "../tests/support/lines.ts";
import { childPids, DENO_RUN } from "../tests/support/cli.ts";

const useHelm4 = Deno.args.join(" ").match(/--helm[ =]4/) !== null;
const tty = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
const paint = (code: string) => (s: string) => tty ? `\x1b[${code}m${s}\x1b[0m` : s;
const bold = paint("1");
const dim = paint("2");
const cyan = paint("36");
const yellow = paint("33");
const green = paint("32");
const red = paint("31");

function scene(title: string, text: string) {
  console.log(`\n${bold(`━━ ${title}`)}\n${dim(text)}\n`);
}

const bins = await ensureBinaries({
  controlPlane: true,
  log: (m) => console.log(dim(`setup: ${m}`)),
});
const helmBin = useHelm4 ? bins.helm4 : bins.helm3;
const plane = await startControlPlane({ kubeApiserver: bins.kubeApiserver!, etcd: bins.etcd! });
const home = await Deno.makeTempDir({ prefix: "helm-lock-demo-" });
const env: Record<string, string> = {
  KUBECONFIG: plane.kubeconfig,
  HELM_BIN: helmBin,
  HELM_CONFIG_HOME: `${home}/config`,
  HELM_CACHE_HOME: `${home}/cache`,
  HELM_DATA_HOME: `${home}/data`,
  NO_COLOR: "1",
};
const CHART = "tests/fixtures/slow";

/** A command whose output lines are printed with a prefix as they come. */
function start(
  label: string,
  color: (s: string) => string,
  cmd: string,
  args: string[],
  extraEnv = {},
) {
  const shown = cmd === helmBin ? "helm" : "helm lock";
  const shownArgs = cmd === helmBin ? args : args.slice(DENO_RUN.length);
  console.log(color(`${label} $ ${shown} ${shownArgs.join(" ")}`));
  const child = new Deno.Command(cmd, {
    args,
    env: { ...env, ...extraEnv },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const seen: string[] = [];
  const watchers: Array<[RegExp, () => void]> = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const line of lines(stream)) {
      if (line.trim()) console.log(color(`${label} │ `) + line);
      seen.push(line);
      for (const [re, resolve] of watchers) if (re.test(line)) resolve();
    }
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]);
  return {
    child,
    /** Resolves once a line matching `re` was printed. */
    printed(re: RegExp): Promise<void> {
      if (seen.some((l) => re.test(l))) return Promise.resolve();
      return new Promise((resolve) => watchers.push([re, resolve]));
    },
    async finish() {
      const status = await child.status;
      await done;
      const mark = status.success ? green("exit 0") : red(`exit ${status.signal ?? status.code}`);
      console.log(color(`${label} └ `) + mark);
      return status;
    },
  };
}

const helm = (label: string, args: string[]) => start(label, cyan, helmBin, args);
const helmLock = (label: string, color: (s: string) => string, args: string[], job: string) =>
  start(label, color, Deno.execPath(), [...DENO_RUN, ...args], {
    CI_JOB_URL: `https://gitlab.example.com/shop/web/-/jobs/${job}`,
  });

async function status(): Promise<string> {
  const out = await new Deno.Command(helmBin, {
    args: ["status", "web", "-o", "json"],
    env,
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!out.success) return "none";
  const json = JSON.parse(new TextDecoder().decode(out.stdout));
  return `${json.info.status} (revision ${json.version})`;
}

async function until(want: string) {
  while (!(await status()).startsWith(want)) await new Promise((r) => setTimeout(r, 100));
}

try {
  const version = new TextDecoder().decode(
    (await new Deno.Command(helmBin, { args: ["version", "--short"], stdout: "piped" }).output())
      .stdout,
  ).trim();
  console.log(bold(`helm-lock demo: kube-apiserver at ${plane.server}, helm ${version}`));
  console.log(dim(
    "No controllers run on this control plane, so a Deployment never becomes ready:\n" +
      "`helm upgrade --wait` of the demo chart stays mid-upgrade, like a slow real deploy.",
  ));

  scene(
    "1. The problem",
    "A deploy job is killed mid-upgrade (pipeline cancelled, runner OOM-killed).\n" +
      "helm never gets to finish: the release stays pending-upgrade and blocks every later deploy.",
  );
  await helm("setup ", ["install", "web", CHART]).finish();
  const doomed = helm("job 1 ", [
    "upgrade",
    "web",
    CHART,
    "--wait",
    "--timeout",
    "5m",
    "--set",
    "tag=v2",
  ]);
  await until("pending-upgrade");
  console.log(yellow("       … job 1 is killed (SIGKILL) while helm waits for the rollout"));
  doomed.child.kill("SIGKILL");
  await doomed.finish();
  console.log(dim(`       release web is now: ${await status()}`));
  await helm("job 2 ", ["upgrade", "web", CHART, "--set", "tag=v3"]).finish();

  scene(
    "2. helm lock recovers the stuck release",
    "Same command, wrapped: take the lock, see pending-upgrade, roll back to the last good\n" +
      "revision, then run the upgrade exactly as given.",
  );
  await helmLock("job 3 ", green, ["upgrade", "web", CHART, "--set", "tag=v3"], "3").finish();

  scene(
    "3. Two deploys at once wait their turn",
    "Job 4 deploys with --wait (it will time out after 6 s); job 5 starts at the same moment.\n" +
      "Job 5 waits for the lock, is told who holds it, and starts the instant job 4 releases it.",
  );
  const a = helmLock("job 4 ", yellow, [
    "upgrade",
    "web",
    CHART,
    "--wait",
    "--timeout",
    "6s",
    "--set",
    "tag=v4",
  ], "4");
  await new Promise((r) => setTimeout(r, 1500));
  const b = helmLock("job 5 ", green, ["upgrade", "web", CHART, "--set", "tag=v5"], "5");
  await Promise.all([a.finish(), b.finish()]);

  scene(
    "4. A killed holder cannot block anyone for long",
    "Job 6 holds the lock with a 5 s Lease and is killed with its helm. Its Lease is no longer\n" +
      "renewed; job 7 takes it over once it expires, recovers the release and deploys.",
  );
  const c = helmLock("job 6 ", yellow, [
    "upgrade",
    "web",
    CHART,
    "--wait",
    "--set",
    "tag=v6",
    "--lock-lease-duration",
    "5s",
  ], "6");
  await until("pending-upgrade");
  console.log(yellow("       … job 6 and its helm are killed (SIGKILL)"));
  for (const pid of await childPids(c.child.pid)) Deno.kill(pid, "SIGKILL");
  c.child.kill("SIGKILL");
  await c.finish();
  await helmLock("job 7 ", green, ["upgrade", "web", CHART, "--set", "tag=v7"], "7").finish();

  scene(
    "5. Deploys land in the order they came",
    "Job 8 holds the lock for a while; jobs 9, 10 and 11 start one after the other. Each waits\n" +
      "in a queue kept in the cluster, is told its place, and deploys in its turn: the newest\n" +
      "commit is the last one deployed, whatever order the runners pick the jobs up in.",
  );
  const slowHolder = (job: string) =>
    helmLock(`job ${job}`.padEnd(6), yellow, [
      "upgrade",
      "web",
      CHART,
      "--wait",
      "--timeout",
      "12s",
      "--set",
      `tag=v${job}`,
    ], job);
  const queued = async (job: string, extra: string[] = []) => {
    const p = helmLock(`job ${job}`.padEnd(6), green, [
      "upgrade",
      "web",
      CHART,
      "--set",
      `tag=v${job}`,
      ...extra,
    ], job);
    // Queued (or, on a slow machine, already through): the next job may start.
    await p.printed(/waiting for lock|acquired lock/);
    return p;
  };
  const h8 = slowHolder("8");
  await h8.printed(/running helm/);
  const fifo = [await queued("9"), await queued("10"), await queued("11")];
  await Promise.all([h8.finish(), ...fifo.map((p) => p.finish())]);

  scene(
    "6. Newest only",
    "With --lock-queue newest, when the lock frees only the newest waiting job deploys; the\n" +
      "older ones exit 8 without running helm, naming the job that superseded them\n" +
      "(--lock-superseded-ok makes that exit 0 for pipelines that want it green).",
  );
  const h12 = slowHolder("12");
  await h12.printed(/running helm/);
  const newest = [];
  for (const job of ["13", "14", "15"]) newest.push(await queued(job, ["--lock-queue", "newest"]));
  await Promise.all([h12.finish(), ...newest.map((p) => p.finish())]);

  scene(
    "The release history",
    "Every deploy either happened or was rolled back; nothing is stuck; v11 came after v10, and\n" +
      "v13 and v14 never ran.",
  );
  await helm("      ", ["history", "web"]).finish();
} finally {
  await plane.stop();
  await Deno.remove(home, { recursive: true }).catch(() => {});
  console.log(dim("\ncontrol plane stopped"));
}
