// deno-lint-ignore-file no-console
/**
 * A separate OS process that takes the lock, for the multi-process end-to-end tests and
 * the bench. Usage: `deno run -A tests/support/lock_worker.ts '<WorkerConfig as JSON>'`.
 *
 * Prints one JSON line per event to stdout; `t` is wall-clock milliseconds with sub-ms
 * precision (`performance.timeOrigin + performance.now()`), comparable across processes
 * on the same machine:
 * `{"event":"ready"}`, `{"event":"acquired","t":…,"waitedMs":…,"requests":…}` (requests
 * sent while acquiring), `{"event":"releasing","t":…}`, `{"event":"released","t":…}`,
 * `{"event":"lost","t":…,"code":4,"message":"…"}`, `{"event":"progress",…}`,
 * `{"event":"error","code":3,"message":"…"}` (then exit code 10 + code). A worker that joins
 * the queue prints `{"event":"queued","t":…,"ticket":"…"}`; `{"event":"placed","t":…}` says
 * it has its place (a ticket, or the lock itself when it found the queue empty).
 *
 * The lock is taken by `takeLock()` (lib/lock/take.ts), as helm-lock takes it: always through
 * the queue, which a job finding it empty skips.
 *
 * @module
 */

import { connect } from "../../lib/kube/connection.ts";
import { kubeClient } from "../../lib/kube/rest.ts";
import { HelmLockError } from "../../lib/errors.ts";
import { kubeLeaseApi, type LeaseApi } from "../../lib/lock/cache.ts";
import { holderIdentity, lockAnnotations } from "../../lib/lock/identity.ts";
import { takeLock } from "../../lib/lock/take.ts";
import type { QueueMode } from "../../lib/lock/tickets.ts";

/** What a worker does. */
export interface WorkerConfig {
  kubeconfig: string;
  namespace: string;
  release: string;
  timeoutMs: number;
  leaseDurationSeconds?: number;
  /**
   * After acquiring: `release` after `holdMs`; `hold` until killed (or stdin closes, then
   * release); `until-lost` until the lost signal fires.
   */
  mode: "release" | "hold" | "until-lost";
  holdMs?: number;
  /** Extra environment for the annotations (CI_JOB_URL, ...). */
  env?: Record<string, string>;
  /** Take the lock this many times in a row (the bench), releasing each time. */
  rounds?: number;
  /** Pause between rounds, so that a waiting process gets the lock first. */
  pauseMs?: number;
  /** `--lock-queue`: the queue's mode. @default {"fifo"} */
  queue?: QueueMode;
  /** `--lock-order-key`: ordered by it, and refused when older than the last recorded deploy. */
  orderKey?: number;
  /** Wait for a line on stdin before each round (the first after `ready`). */
  gate?: boolean;
  /**
   * A command (argv, no shell) to run while holding the lock, like helm-lock runs helm:
   * emits `{"event":"ran","t":…,"code":…,"output":"…"}` when it ends, then releases.
   */
  run?: { argv: string[]; env?: Record<string, string> };
}

const now = () => performance.timeOrigin + performance.now();
const emit = (event: Record<string, unknown>) => console.log(JSON.stringify(event));

const config: WorkerConfig = JSON.parse(Deno.args[0] ?? "{}");
const client = kubeClient(connect({ kubeconfig: config.kubeconfig }, {}));
const leases = kubeLeaseApi(client, config.namespace);
let sent = 0;
/** The Lease API, counting the requests sent through it. */
const api: LeaseApi = {
  list: (selector) => (sent++, leases.list(selector)),
  get: (name) => (sent++, leases.get(name)),
  create: (body) => (sent++, leases.create(body)),
  replace: (body) => (sent++, leases.replace(body)),
  delete: (name, pre) => (sent++, leases.delete(name, pre)),
  watch: (selector, rv, onEvent, signal) => (sent++, leases.watch(selector, rv, onEvent, signal)),
};
const requests = () => sent;
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
const ctrlC = new AbortController();
Deno.addSignalListener("SIGTERM", () => ctrlC.abort(new Error("SIGTERM")));

// A gated worker starts waiting on a signal: have the client's code loaded and run once by then.
if (config.gate) await leases.get("warm-up").catch(() => {});
emit({ event: "ready", pid: Deno.pid });
try {
  for (let round = 0; round < (config.rounds ?? 1); round++) {
    if (config.gate) await lines.read();
    const startedWaiting = now();
    const countBefore = requests();
    let queued = false;
    const lock = await takeLock({
      client,
      namespace: config.namespace,
      release: config.release,
      identity: holderIdentity(),
      annotations: lockAnnotations({
        command: `upgrade ${config.release}`,
        env: { ...Deno.env.toObject(), ...config.env },
      }),
      timeoutMs: config.timeoutMs,
      api,
      signal: ctrlC.signal,
      order: {
        mode: config.queue ?? "fifo",
        ...(config.orderKey === undefined ? {} : { key: config.orderKey, scope: "order-key" }),
      },
      refuseOutdated: config.orderKey !== undefined,
      onProgress: (p) =>
        emit({ event: "progress", t: now(), requests: requests() - countBefore, ...p }),
      onQueued: (ticket) => {
        queued = true;
        emit({ event: "queued", t: now(), ticket });
        emit({ event: "placed", t: now(), ticket });
      },
      warn: (line) => console.error(`lock_worker: ${line}`),
      ...(config.leaseDurationSeconds ? { leaseDurationSeconds: config.leaseDurationSeconds } : {}),
    });
    const acquiredAt = now();
    // Found the queue empty: the lock, taken at once, is its place.
    if (!queued) {
      emit({ event: "placed", t: acquiredAt });
    }
    emit({
      event: "acquired",
      t: acquiredAt,
      waitedMs: acquiredAt - startedWaiting,
      requests: requests() - countBefore,
    });
    lock.lost.addEventListener("abort", () => {
      const reason = lock.lost.reason as HelmLockError;
      emit({ event: "lost", t: now(), code: reason.code, message: reason.message });
    });
    if (config.run) {
      const [bin = "", ...args] = config.run.argv;
      const out = await new Deno.Command(bin, {
        args,
        env: config.run.env ?? {},
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const output = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      emit({ event: "ran", t: now(), code: out.code, output });
    } else if (config.mode === "until-lost") {
      await new Promise((resolve) => lock.lost.addEventListener("abort", resolve));
    } else if (config.mode === "hold") {
      await lines.read(); // Until the test writes a line or closes stdin.
    } else {
      await new Promise((resolve) => setTimeout(resolve, config.holdMs ?? 0));
    }
    emit({ event: "releasing", t: now() });
    await lock.release();
    emit({ event: "released", t: now() });
    if (config.pauseMs) await new Promise((resolve) => setTimeout(resolve, config.pauseMs));
  }
} catch (err) {
  const code = err instanceof HelmLockError ? err.code : 1;
  emit({ event: "error", code, message: err instanceof Error ? err.message : String(err) });
  Deno.exitCode = 10 + code;
}
lines.releaseLock();
Deno.exit();
