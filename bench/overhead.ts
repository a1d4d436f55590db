/**
 * Wrapper overhead: wall time of `helm lock upgrade` against plain `helm upgrade` of the
 * fast chart, interleaved so that machine noise hits both alike. Reports medians, their
 * ratio and their difference (goal: at most 0.5 s more), and what the fence's pass-through
 * adds (`helm lock` against `helm lock --lock-no-fence`).
 *
 * @module
 */
import { DENO_RUN } from "../tests/support/cli.ts";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function timed(cmd: string, args: string[], env: Record<string, string>): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command(cmd, { args, env, stdout: "null", stderr: "piped" }).output();
  const ms = performance.now() - start;
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

/**
 * Runs `runs` interleaved pairs with helm at `helmBin` and returns README-ready markdown.
 */
export async function benchOverhead(
  kubeconfig: string,
  helmName: string,
  helmBin: string,
  runs = 15,
  /** Extra helm flags for every run, e.g. `--wait`. */
  extra: string[] = [],
): Promise<string> {
  const home = await Deno.makeTempDir({ prefix: "helm-lock-bench-" });
  const namespace = `bench-${crypto.randomUUID().slice(0, 8)}`;
  const env = {
    KUBECONFIG: kubeconfig,
    HELM_BIN: helmBin,
    HELM_CONFIG_HOME: `${home}/config`,
    HELM_CACHE_HOME: `${home}/cache`,
    HELM_DATA_HOME: `${home}/data`,
  };
  const chart = "tests/fixtures/fast";
  const ns = ["-n", namespace, "--create-namespace"];
  await timed(helmBin, ["upgrade", "--install", "plain", chart, ...ns], env);
  await timed(helmBin, ["upgrade", "--install", "locked", chart, ...ns], env);
  // One untimed run warms deno's module cache.
  await timed(Deno.execPath(), [...DENO_RUN, "upgrade", "locked", chart, ...ns], env);
  const plain: number[] = [];
  const locked: number[] = [];
  const unfenced: number[] = [];
  for (let i = 0; i < runs; i++) {
    const set = ["--set", `tag=run-${i}`, ...extra];
    const lock = [...DENO_RUN, "upgrade", "locked", chart, ...ns, ...set];
    plain.push(await timed(helmBin, ["upgrade", "plain", chart, ...ns, ...set], env));
    locked.push(await timed(Deno.execPath(), lock, env));
    unfenced.push(await timed(Deno.execPath(), [...lock, "--lock-no-fence"], env));
  }
  await Deno.remove(home, { recursive: true });
  const p = median(plain);
  const l = median(locked);
  const u = median(unfenced);
  const name = extra.length ? `${helmName} ${extra.join(" ")}` : helmName;
  return `| ${name} | ${runs} | ${p.toFixed(0)} ms | ${l.toFixed(0)} ms | ${
    (l / p).toFixed(2)
  }× | +${(l - p).toFixed(0)} ms | ${l - u >= 0 ? "+" : ""}${(l - u).toFixed(0)} ms |`;
}

/** The markdown table header for {@linkcode benchOverhead} rows. */
export const OVERHEAD_HEADER =
  "| helm | runs | `helm upgrade` median | `helm lock upgrade` median | ratio | difference | of which the fence (vs `--lock-no-fence`) |\n" +
  "| --- | --- | --- | --- | --- | --- | --- |";
