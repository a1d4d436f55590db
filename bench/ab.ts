// deno-lint-ignore-file no-console
/**
 * Interleaved A/B of two builds of helm-lock against plain helm: each round runs plain
 * `helm upgrade`, build A's `helm lock upgrade` and build B's, rotating the order every round
 * so that machine noise and "what ran just before" hit all three alike. Reports the medians
 * and what each build costs over plain helm, per helm. This is how a start-up device is
 * judged: it stays only when the build with it beats the build without it by 15 ms or more.
 *
 * `deno run -A bench/ab.ts <A> <B> [rounds=41]` where A and B are git commits (checked out with
 * `git archive` into a temp directory) or source directories; the cluster and helms come
 * from `HELM_LOCK_TEST_KUBECONFIG`, `HELM_LOCK_TEST_HELM3` and `HELM_LOCK_TEST_HELM4` (as
 * `tests/run.ts` sets them, or a control plane started for the purpose).
 *
 * @module
 */
import { join } from "node:path";
import { PERMISSIONS } from "../scripts/compile.ts";
import { checkOut } from "../tests/support/git_archive.ts";
import { median, timed } from "./overhead.ts";

const root = join(import.meta.dirname!, "..");
const [a, b, roundsText = "41"] = Deno.args;
if (!a || !b) {
  console.error("usage: deno run -A bench/ab.ts <commit-or-dir-A> <commit-or-dir-B> [rounds]");
  Deno.exit(2);
}
const rounds = Number(roundsText);

/** A source tree for `ref`: the directory itself, or `git archive` of a commit. */
async function tree(ref: string): Promise<string> {
  if ((await Deno.stat(ref).catch(() => undefined))?.isDirectory) return ref;
  return await checkOut(root, ref, "helm-lock-ab-");
}

const kubeconfig = Deno.env.get("HELM_LOCK_TEST_KUBECONFIG")!;
const helms = [
  { name: "helm v3.17.2", bin: Deno.env.get("HELM_LOCK_TEST_HELM3")! },
  { name: "helm v4.1.4", bin: Deno.env.get("HELM_LOCK_TEST_HELM4")! },
];
const builds = await Promise.all([a, b].map(tree));
const run = (
  dir: string,
) => ["run", "--quiet", ...PERMISSIONS, "--config", join(dir, "deno.json"), join(dir, "main.ts")];
const home = await Deno.makeTempDir({ prefix: "helm-lock-ab-home-" });
const namespace = `ab-${crypto.randomUUID().slice(0, 8)}`;
const chart = join(root, "tests/fixtures/fast");
console.log(`A = ${a}, B = ${b}, ${rounds} interleaved rounds per helm\n`);
console.log(
  "| helm | plain helm | A | B | A − plain | B − plain | B − A |\n|---|---|---|---|---|---|---|",
);
for (const [h, { name, bin }] of helms.entries()) {
  const env = {
    DENO_NO_UPDATE_CHECK: "1",
    KUBECONFIG: kubeconfig,
    HELM_BIN: bin,
    HELM_CONFIG_HOME: `${home}/config`,
    HELM_CACHE_HOME: `${home}/cache`,
    HELM_DATA_HOME: `${home}/data`,
  };
  const ns = ["-n", namespace];
  const releases = [`plain-${h}`, `a-${h}`, `b-${h}`];
  for (const r of releases) {
    await timed(bin, ["upgrade", "--install", r, chart, ...ns, "--create-namespace"], env);
  }
  // One untimed run each warms deno's module cache.
  for (const [i, dir] of builds.entries()) {
    await timed(Deno.execPath(), [...run(dir), "upgrade", releases[i + 1]!, chart, ...ns], env);
  }
  const times: number[][] = [[], [], []];
  const steps = [
    () => timed(bin, ["upgrade", releases[0]!, chart, ...ns], env),
    () => timed(Deno.execPath(), [...run(builds[0]!), "upgrade", releases[1]!, chart, ...ns], env),
    () => timed(Deno.execPath(), [...run(builds[1]!), "upgrade", releases[2]!, chart, ...ns], env),
  ];
  for (let i = 0; i < rounds; i++) {
    // Rotate: each kind runs first, second and third equally often.
    for (let k = 0; k < 3; k++) {
      const which = (i + k) % 3;
      times[which]!.push(await steps[which]!());
    }
  }
  const [p, ma, mb] = times.map(median) as [number, number, number];
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const diff = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(0)} ms`;
  console.log(
    `| ${name} | ${ms(p)} | ${ms(ma)} | ${ms(mb)} | ${diff(ma - p)} | ${diff(mb - p)} | ${
      diff(mb - ma)
    } |`,
  );
}
await Deno.remove(home, { recursive: true });
for (const [i, dir] of builds.entries()) {
  if (dir !== [a, b][i]) await Deno.remove(dir, { recursive: true });
}
