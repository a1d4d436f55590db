/**
 * Wrapper overhead: wall time of `helm lock upgrade` against plain `helm upgrade` of the
 * fast chart, interleaved so that machine noise hits both alike. Reports medians, their
 * ratio and their difference (goal: at most ~120 ms more), and where helm-lock's time goes
 * (from the moments its usual stderr lines arrive, and `--version` for the start-up).
 *
 * @module
 */
import { DENO_RUN } from "../tests/support/cli.ts";
import { lines } from "../tests/support/lines.ts";

/** Milliseconds from spawn to the first stderr line matching each pattern, and to the exit. */
async function timedSteps(
  args: string[],
  env: Record<string, string>,
  marks: RegExp[],
): Promise<{ at: (number | undefined)[]; total: number }> {
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const at: (number | undefined)[] = marks.map(() => undefined);
  const seen: string[] = [];
  for await (const line of lines(child.stderr)) {
    seen.push(line);
    marks.forEach((re, i) => {
      if (at[i] === undefined && re.test(line)) at[i] = performance.now() - start;
    });
  }
  const status = await child.status;
  const total = performance.now() - start;
  if (!status.success) throw new Error(`helm-lock ${args.join(" ")} failed: ${seen.join("\n")}`);
  return { at, total };
}

/** A value as kubectl writes it in block YAML: maps, lists (not indented), plain or quoted. */
function blockYaml(value: unknown, indent = ""): string {
  if (Array.isArray(value)) {
    return value.map((v) => `${indent}- ${blockYaml(v, `${indent}  `).trimStart()}`).join("");
  }
  if (value !== null && typeof value === "object" && Object.keys(value).length > 0) {
    return Object.entries(value).map(([k, v]) =>
      v !== null && typeof v === "object" && Object.keys(v).length > 0
        ? `${indent}${k}:\n${blockYaml(v, Array.isArray(v) ? indent : `${indent}  `)}`
        : `${indent}${k}: ${blockYaml(v).trim()}\n`
    ).join("");
  }
  if (value !== null && typeof value === "object") return Array.isArray(value) ? "[]\n" : "{}\n";
  const text = String(value);
  return /^[A-Za-z][\w./:@-]*$/.test(text) && !/^(true|false|null)$/i.test(text)
    ? `${text}\n`
    : `${JSON.stringify(value)}\n`;
}

/** The lines that mark the end of each step of a `helm lock upgrade`. */
const STEP_MARKS = [/acquired lock /, /running helm /, /released lock /];

/** The median of `xs`. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The wall time (ms) of `cmd args` run to its end; throws with its stderr when it fails. */
export async function timed(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command(cmd, { args, env, stdout: "null", stderr: "piped" }).output();
  const ms = performance.now() - start;
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

/**
 * Runs `runs` rounds against the cluster of `kubeconfig`; each round runs plain `helm
 * upgrade`, `helm lock upgrade` and `helm lock upgrade --lock-no-fence` with every helm in
 * turn, in reverse order every other round (one interleaved run, so that machine noise hits
 * all alike), then `helm-lock --version` for the start-up. Returns
 * README-ready markdown rows, one per helm.
 */
export async function benchOverhead(
  kubeconfig: string,
  helms: readonly { name: string; bin: string }[],
  runs = 15,
  extra: string[] = [],
): Promise<{ row: string; breakdown: string }[]> {
  const home = await Deno.makeTempDir({ prefix: "helm-lock-bench-" });
  // The test plane writes JSON; CI kubeconfigs are mostly kubectl's block YAML: measure that.
  const yaml = `${home}/kubeconfig.yaml`;
  await Deno.writeTextFile(yaml, blockYaml(JSON.parse(await Deno.readTextFile(kubeconfig))));
  kubeconfig = yaml;
  const namespace = `bench-${crypto.randomUUID().slice(0, 8)}`;
  const chart = "tests/fixtures/fast";
  const ns = ["-n", namespace];
  const envOf = (bin: string) => ({
    // As the launcher of install-binary.sh: no update check on every run.
    DENO_NO_UPDATE_CHECK: "1",
    KUBECONFIG: kubeconfig,
    HELM_BIN: bin,
    HELM_CONFIG_HOME: `${home}/config`,
    HELM_CACHE_HOME: `${home}/cache`,
    HELM_DATA_HOME: `${home}/data`,
  });
  const stats = helms.map(() => ({
    plain: [] as number[],
    locked: [] as number[],
    unfenced: [] as number[],
    steps: [[], [], [], []] as number[][],
  }));
  const starts: number[] = [];
  for (const [h, { bin }] of helms.entries()) {
    const env = envOf(bin);
    const create = [...ns, "--create-namespace"];
    await timed(bin, ["upgrade", "--install", `plain-${h}`, chart, ...create], env);
    await timed(bin, ["upgrade", "--install", `locked-${h}`, chart, ...create], env);
    // One untimed run warms deno's module cache.
    await timed(Deno.execPath(), [...DENO_RUN, "upgrade", `locked-${h}`, chart, ...ns], env);
  }
  for (let i = 0; i < runs; i++) {
    const set = ["--set", `tag=run-${i}`, ...extra];
    for (const [h, { bin }] of helms.entries()) {
      const env = envOf(bin);
      const s = stats[h]!;
      const plain = async () =>
        s.plain.push(await timed(bin, ["upgrade", `plain-${h}`, chart, ...ns, ...set], env));
      const locked = async () => {
        const run = await timedSteps(
          [...DENO_RUN, "upgrade", `locked-${h}`, chart, ...ns, ...set],
          env,
          STEP_MARKS,
        );
        s.locked.push(run.total);
        const [acquired = NaN, running = NaN, released = NaN] = run.at;
        s.steps[0]!.push(acquired);
        s.steps[1]!.push(running - acquired);
        s.steps[2]!.push(released - running);
        s.steps[3]!.push(run.total - released);
      };
      // The same run with helm talking to the API server directly: what the fence costs.
      const unfenced = async () =>
        s.unfenced.push(
          await timed(
            Deno.execPath(),
            [...DENO_RUN, "upgrade", `locked-${h}`, chart, ...ns, ...set, "--lock-no-fence"],
            env,
          ),
        );
      // Every other round in reverse order: what runs right after another kind of run (a
      // warm page cache, the API server still busy) is the same for all three.
      for (const step of i % 2 ? [unfenced, locked, plain] : [plain, locked, unfenced]) {
        await step();
      }
    }
    // The start-up alone: the same module graph, no request.
    starts.push(await timed(Deno.execPath(), [...DENO_RUN, "--version"], envOf("")));
  }
  await Deno.remove(home, { recursive: true });
  const start = median(starts);
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  return helms.map(({ name }, h) => {
    const s = stats[h]!;
    const p = median(s.plain);
    const l = median(s.locked);
    const fence = l - median(s.unfenced);
    const [lock, status, helm, exit] = s.steps.map(median) as [number, number, number, number];
    return {
      row: `| ${name}${extra.length ? ` ${extra.join(" ")}` : ""} | ${runs} | ${ms(p)} | ${
        ms(l)
      } | ${(l / p).toFixed(2)}× | +${ms(l - p)} | ${fence >= 0 ? "+" : ""}${ms(fence)} |`,
      breakdown: `| ${name} | ${ms(start)} | ${ms(lock - start)} | ${ms(status)} | ${ms(helm)} | ${
        ms(exit)
      } |`,
    };
  });
}

/** The markdown table header for the breakdown rows of {@linkcode benchOverhead}. */
export const BREAKDOWN_HEADER =
  "| helm | start (`--version`) | connect + lock | status check | helm and release | exit |\n" +
  "| --- | --- | --- | --- | --- | --- |";

/** The markdown table header for {@linkcode benchOverhead} rows. */
export const OVERHEAD_HEADER =
  "| helm | runs | `helm upgrade` median | `helm lock upgrade` median | ratio | difference | against `--lock-no-fence` |\n" +
  "| --- | --- | --- | --- | --- | --- | --- |";
