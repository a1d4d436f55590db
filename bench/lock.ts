// deno-lint-ignore-file no-console
/**
 * Lock bench on a real API server, with separate OS processes:
 *
 * - handoff latency: two processes take turns on one lock; from the moment the holder
 *   calls `release()` to the moment the other process holds the lock;
 * - waiting cost: API requests a process sends per minute while it waits for a lock
 *   held by another (renewing) process;
 * - the same two through the deploy queue (lib/lock/queue.ts, FIFO), beside the plain lock's.
 *
 * `deno run -A bench/lock.ts [kubeconfig]` (default: `HELM_LOCK_TEST_KUBECONFIG`), or via
 * `deno task bench`, which starts the test control plane first.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import { LockProcess } from "../tests/support/lock_procs.ts";
import type { WorkerConfig } from "../tests/support/lock_worker.ts";

/** Options for {@linkcode benchLock}. */
export interface BenchLockOptions {
  /**
   * Rounds per process in the handoff phase (two processes: about twice as many handoffs).
   * @default {20}
   */
  rounds?: number;
  /**
   * How long the holder keeps the lock in the waiting-cost phase, in milliseconds.
   * @default {60000}
   */
  waitMs?: number;
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

/** Handoff latencies (ms): each `releasing` followed by the *other* process's `acquired`. */
function handoffs(a: LockProcess, b: LockProcess): number[] {
  const events = [
    ...a.events.map((e) => ({ ...e, who: "a" })),
    ...b.events.map((e) => ({ ...e, who: "b" })),
  ].filter((e) => e.event === "acquired" || e.event === "releasing")
    .sort((x, y) => x.t! - y.t!);
  const latencies: number[] = [];
  for (let i = 0; i + 1 < events.length; i++) {
    const [rel, next] = [events[i]!, events[i + 1]!];
    if (rel.event === "releasing" && next.event === "acquired" && next.who !== rel.who) {
      latencies.push(next.t! - rel.t!);
    }
  }
  return latencies;
}

interface Measured {
  latencies: number[];
  perMinute: number;
  requests: number;
  spanMs: number;
}

/** Both phases for one way of taking the lock. */
async function measure(
  base: WorkerConfig,
  rounds: number,
  waitMs: number,
  suffix: string,
): Promise<Measured> {
  // Phase 1: two processes take turns.
  const turn = { ...base, rounds, holdMs: 100, pauseMs: 50 };
  const a = new LockProcess({ ...turn, release: `handoff${suffix}` });
  const b = new LockProcess({ ...turn, release: `handoff${suffix}` });
  await Promise.all([a.close(180_000), b.close(180_000)]);
  const latencies = handoffs(a, b).sort((x, y) => x - y);
  if (latencies.length === 0) throw new Error("No handoff was observed");

  // Phase 2: one process waits while another holds (and renews) the lock. Its requests are
  // counted between its first and last progress line (about every 10 s): idle waiting only,
  // not joining or taking the lock.
  const release = `wait${suffix}`;
  const holder = new LockProcess({ ...base, release, mode: "hold" });
  await holder.next("acquired", 30_000);
  const waiter = new LockProcess({ ...base, release, timeoutMs: waitMs + 60_000 });
  await waiter.next("progress", 30_000);
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  const progress = waiter.events.filter((e) => e.event === "progress");
  await holder.send();
  await waiter.next("acquired", 30_000);
  await Promise.all([holder.close(), waiter.close()]);
  const [first, last] = [progress[0]!, progress.at(-1)!];
  const requests = (last.requests ?? 0) - (first.requests ?? 0);
  const spanMs = last.t! - first.t!;
  return { latencies, perMinute: requests / (spanMs / 60_000), requests, spanMs };
}

/**
 * Runs the lock bench against the cluster of `kubeconfigPath` (in a fresh namespace, removed
 * afterwards) and returns README-ready markdown lines.
 *
 * @param kubeconfigPath An admin kubeconfig.
 * @param options Bench sizes.
 * @returns A markdown table with the measured figures and the goals.
 */
export async function benchLock(
  kubeconfigPath: string,
  options: BenchLockOptions = {},
): Promise<string> {
  const { rounds = 20, waitMs = 60_000 } = options;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const namespace = `helm-lock-bench-${crypto.randomUUID().slice(0, 8)}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const base: WorkerConfig = {
    kubeconfig: kubeconfigPath,
    namespace,
    release: "bench",
    timeoutMs: 120_000,
    mode: "release",
  };
  try {
    const plain = await measure(base, rounds, waitMs, "");
    const queued = await measure({ ...base, queue: "fifo" }, rounds, waitMs, "-q");
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    const row = (what: string, f: (m: Measured) => string, goal: string) =>
      `| ${what} | ${f(plain)} | ${f(queued)} | ${goal} |`;
    return [
      "| Lock bench (two processes, real kube-apiserver) | plain lock | through the queue (FIFO) | goal |",
      "|---|---|---|---|",
      row(
        "handoff latency p50 (`release()` → other process holds the lock)",
        (m) => ms(percentile(m.latencies, 50)),
        "≤ 50 ms",
      ),
      row("handoff latency p95", (m) => ms(percentile(m.latencies, 95)), "≤ 250 ms"),
      row("handoff latency max", (m) => ms(m.latencies.at(-1)!), ""),
      row("handoffs measured", (m) => String(m.latencies.length), "≥ 30"),
      row(
        "API requests per minute by a waiting process",
        (m) => `${m.perMinute.toFixed(1)} (${m.requests} in ${(m.spanMs / 1000).toFixed(0)} s)`,
        "≤ 6",
      ),
    ].join("\n");
  } finally {
    await core.deleteNamespace({ name: namespace }).catch(() => {});
  }
}

if (import.meta.main) {
  const kubeconfig = Deno.args[0] ?? Deno.env.get("HELM_LOCK_TEST_KUBECONFIG");
  if (!kubeconfig) {
    console.error("Usage: deno run -A bench/lock.ts <admin kubeconfig>");
    Deno.exit(2);
  }
  console.log(await benchLock(kubeconfig));
}
