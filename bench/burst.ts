// deno-lint-ignore-file no-console
/**
 * Burst bench (issue 26): N jobs started at once on one release, helm 3 and helm 4
 * alternating, each `helm-lock upgrade --install` from source as users run it. Reports the
 * Lease requests per job as the API server counts them (`apiserver_request_total`), and the
 * burst's wall time against N plain `helm upgrade --install` run one after another (the best
 * any lock can do: the deploys are serial either way).
 *
 * `deno run -A bench/burst.ts [kubeconfig]` (default: `HELM_LOCK_TEST_KUBECONFIG`; the helms
 * from `HELM_LOCK_TEST_HELM3`/`HELM4`), or via `deno task bench`.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import { join } from "node:path";
import { LockProcess } from "../tests/support/cli.ts";
import { leaseRequests, requestsBetween } from "../tests/support/lease_requests.ts";

const FAST = join(import.meta.dirname!, "..", "tests", "fixtures", "fast");

/** One burst's figures. */
export interface BurstResult {
  jobs: number;
  requestsPerJob: number;
  byKind: Record<string, number>;
  burstMs: number;
  serialPlainMs: number;
}

async function namespace(kubeconfig: string, prefix: string): Promise<string> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const name = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

async function helmHome(): Promise<Record<string, string>> {
  const home = await Deno.makeTempDir({ prefix: "helm-lock-bench-" });
  return {
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_DATA_HOME: join(home, "data"),
  };
}

/** Runs a burst of `jobs` and the same number of plain helm deploys one after another. */
export async function benchBurst(
  kubeconfig: string,
  helms: readonly string[],
  jobs: number,
): Promise<BurstResult> {
  const home = await helmHome();
  const env = (i: number) => ({ ...home, KUBECONFIG: kubeconfig, HELM_BIN: helms[i % 2]! });

  const plainNs = await namespace(kubeconfig, "bench-plain");
  const plainStart = performance.now();
  for (let i = 0; i < jobs; i++) {
    const out = await new Deno.Command(helms[i % 2]!, {
      args: ["upgrade", "--install", "app", FAST, "-n", plainNs],
      env: env(i),
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  }
  const serialPlainMs = performance.now() - plainStart;

  const ns = await namespace(kubeconfig, "bench-burst");
  const before = await leaseRequests(kubeconfig);
  const start = performance.now();
  const procs = Array.from(
    { length: jobs },
    (_, i) =>
      new LockProcess(
        ["upgrade", "--install", "app", FAST, "-n", ns, "--lock-timeout", "10m"],
        env(i),
      ),
  );
  const outs = await Promise.all(procs.map((p) => p.output()));
  const burstMs = performance.now() - start;
  const counted = requestsBetween(before, await leaseRequests(kubeconfig));
  const failed = outs.filter((o) => o.code !== 0);
  if (failed.length > 0) throw new Error(`${failed.length} jobs failed: ${failed[0]!.stderr}`);
  return {
    jobs,
    requestsPerJob: counted.total / jobs,
    byKind: counted.byKind,
    burstMs,
    serialPlainMs,
  };
}

/** The markdown table's header. */
export const BURST_HEADER = "| jobs at once | Lease requests per job | requests by kind | " +
  "burst wall time | N plain helm upgrades one after another | ratio |\n|---|---|---|---|---|---|";

/** One row of the table. */
export function burstRow(r: BurstResult): string {
  const kinds = Object.entries(r.byKind).sort().map(([k, n]) => `${k}: ${n}`).join(", ");
  return `| ${r.jobs} | ${r.requestsPerJob.toFixed(2)} | ${kinds} | ${
    (r.burstMs / 1000).toFixed(1)
  } s | ${(r.serialPlainMs / 1000).toFixed(1)} s | ${(r.burstMs / r.serialPlainMs).toFixed(2)} |`;
}

if (import.meta.main) {
  const kubeconfig = Deno.args[0] ?? Deno.env.get("HELM_LOCK_TEST_KUBECONFIG")!;
  const helms = [Deno.env.get("HELM_LOCK_TEST_HELM3")!, Deno.env.get("HELM_LOCK_TEST_HELM4")!];
  console.log(BURST_HEADER);
  for (const n of [20, 40]) console.log(burstRow(await benchBurst(kubeconfig, helms, n)));
}
