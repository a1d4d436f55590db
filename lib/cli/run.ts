/**
 * One locked helm command, top to bottom (DESIGN §7): find helm, connect like helm, take the
 * lock through the queue, check and recover the release, run helm fenced and watched, release.
 * Each stage is one call; what must be undone is undone in one place (`using`).
 *
 * @module
 */

import type { Invocation } from "./args.ts";
import { roughDuration } from "../duration.ts";
import { apiError } from "../kube/api_error.ts";
import { connectLoading, type KubeConnection } from "../kube/connection.ts";
import { eventRecorder } from "../kube/events.ts";
import { ensureNamespace } from "../kube/namespace.ts";
import { type KubeClient, kubeClient } from "../kube/rest.ts";
import { findHelm, guardHelm } from "../helm/exec.ts";
import { fenceHelm } from "../helm/fence.ts";
import { heldByAncestor, setHeldLock } from "../helm/nesting.ts";
import { recover } from "../helm/recover.ts";
import { runHelm } from "../helm/run.ts";
import { type Interrupts, listenForSignals } from "../helm/signals.ts";
import { holderIdentity, lockAnnotations } from "../lock/identity.ts";
import { lockName } from "../lock/names.ts";
import { pipelineOrder } from "../lock/pipeline.ts";
import type { WaitProgress } from "../lock/queue_view.ts";
import { describeJob, isSuperseded } from "../lock/refusals.ts";
import { type QueuedLock, takeLock } from "../lock/take.ts";
import { redactCommandLine } from "../redact.ts";
import type { Reporter } from "../report.ts";
import { runHelmDirectly } from "./passthrough.ts";

/**
 * Runs the invocation under the lock and returns the exit code to end with: helm's own, or
 * 128 + signal.
 *
 * @throws {HelmLockError} for a missing helm, a lock timeout, a lost lock, a failed recovery, an
 *   unreachable or refusing API server; the lock is released before it is thrown.
 */
export async function run(inv: Invocation, say: Omit<Reporter, "event">): Promise<number> {
  const helm = findHelm();
  const conn = await connectLoading(inv.cluster);
  say.debug(`API server ${conn.server} as ${conn.user}`);
  const ancestor = heldByAncestor(conn.namespace, inv.release);
  if (ancestor) {
    // Run as helm by the helm-lock that holds this very lock: waiting would wait for ourselves.
    say.debug(
      `running helm directly: the lock ${lockName(inv.release)} in namespace ` +
        `"${conn.namespace}" is held by ${ancestor.identity}, the helm-lock that started this one`,
    );
    return await runHelmDirectly(inv.helmArgs);
  }
  using client = disposable(kubeClient(conn));
  const identity = holderIdentity();
  say.debug(`holder identity ${identity}`);
  const report = withEvents(say, client, conn.namespace, inv.release, identity);
  using signals = listenForSignals(say.info);
  await using guard = guardHelm();
  const lock = await take(inv, conn, client, identity, signals, report);
  if (typeof lock === "number") return lock;
  try {
    await using fence = fenceHelm({ ...inv.cluster, fence: inv.fence }, conn, lock, report);
    try {
      await recover(
        inv,
        client,
        conn.namespace,
        fence.env,
        AbortSignal.any([signals.signal, lock.lost]),
        report,
      );
    } catch (err) {
      // A signal or the lost lock stopped recovery's helm: say that, not how helm died of it.
      if (!signals.first && !lock.lost.aborted) throw err;
    }
    const code = await runHelm({
      bin: helm,
      args: inv.helmArgs,
      commandLine: redactCommandLine(inv.helmArgs),
      env: fence.env,
      release: inv.release,
      lost: lock.lost,
      signals,
    }, report);
    if (code === 0 && !inv.dryRun) await afterDeploy(inv, lock, report);
    return code;
  } catch (err) {
    if (lock.lost.aborted) report.event("Lost", String((err as Error)?.message ?? err), "Warning");
    throw err;
  } finally {
    // helm is done: the watchdog ends now, while the lock is released, not at our exit. Whoever
    // reads our stderr (a CI runner, a pipe) waits for the watchdog, which shares it, to exit.
    await guard[Symbol.asyncDispose]();
    await release(
      inv,
      `lock ${lockName(inv.release)} in namespace "${conn.namespace}"`,
      lock,
      report,
    );
    setHeldLock(undefined);
    await report.flush();
  }
}

/** The lock stage: the namespace first if helm is to create it, then the queue. */
async function take(
  inv: Invocation,
  conn: KubeConnection,
  client: KubeClient,
  identity: string,
  signals: Interrupts,
  report: Reporter,
): Promise<QueuedLock | number> {
  const where = `lock ${lockName(inv.release)} in namespace "${conn.namespace}"`;
  // Only where helm itself creates it: on the install path, never on a --dry-run.
  if (inv.createNamespace && inv.install && !inv.dryRun) {
    const created = await ensureNamespace(client, conn.namespace).catch((err) => {
      throw apiError(err, { verb: "create", resource: "namespaces", ...who(conn) });
    });
    if (created) {
      report.info(`created namespace "${conn.namespace}" (--create-namespace) to hold the lock`);
    }
  }
  const started = Date.now();
  const order = inv.orderKey !== undefined
    ? { key: inv.orderKey, scope: "order-key" }
    : pipelineOrder(Deno.env.toObject()) ?? {};
  let lock: QueuedLock;
  let waitingSaid = false;
  try {
    lock = await takeLock({
      client,
      namespace: conn.namespace,
      release: inv.release,
      identity,
      annotations: lockAnnotations({ command: `helm ${redactCommandLine(inv.helmArgs)}` }),
      timeoutMs: inv.lockTimeoutMs,
      leaseDurationSeconds: inv.leaseDurationSeconds,
      order: { mode: inv.queue, ...order },
      refuseOutdated: inv.orderKey !== undefined,
      createNamespaceHint: inv.install && !inv.createNamespace,
      signal: signals.signal,
      warn: report.info,
      onQueued: (ticket) => report.debug(`queued for ${where} with ticket ${ticket}`),
      onProgress: (p) => {
        const line = describeWait(p);
        report.info(`waiting for ${where}: ${line}`);
        // One Event for the wait (the first line), not one every 10 s.
        if (!waitingSaid) report.event("Waiting", line);
        waitingSaid = true;
      },
    });
  } catch (err) {
    if (signals.first) {
      report.info(`${signals.first} while waiting for ${where}: helm did not run`);
      return signals.exitCode();
    }
    if (isSuperseded(err)) {
      report.event("Superseded", err.message, "Warning");
      if (inv.supersededOk) {
        report.info(`${err.message}; exit 0 (--lock-superseded-ok)`);
        return 0;
      }
    }
    throw err;
  }
  setHeldLock({ namespace: conn.namespace, release: inv.release, identity });
  const after = `acquired ${where} after ${roughDuration(Date.now() - started)}`;
  report.info(after);
  report.event("Acquired", after);
  return lock;
}

/** What a waiting job says about the queue and the holder, every 10 s. */
function describeWait(p: WaitProgress): string {
  const parts = [];
  if (p.queue && p.queue.place > 1 && p.queue.ahead) {
    parts.push(`${ordinal(p.queue.place)} in line behind ${describeJob(p.queue.ahead)}`);
  } else if (p.queue) parts.push("next in line");
  const h = p.holder;
  if (!h) parts.push("the lock is free");
  else {
    parts.push(`held by ${h.identity}`);
    if (h.ciJobUrl) parts.push(`CI job ${h.ciJobUrl}`);
    if (h.user) parts.push(`user ${h.user}`);
    if (p.heldForMs !== undefined) parts.push(`for ${roughDuration(p.heldForMs)}`);
  }
  return parts.join(", ");
}

/** 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st. */
export function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  return `${n}${teen ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th"}`;
}

/** A successful deploy is recorded (`--lock-order-key`); an uninstall takes the record along. */
async function afterDeploy(inv: Invocation, lock: QueuedLock, report: Reporter): Promise<void> {
  const what = inv.command === "uninstall"
    ? lock.forgetRelease()
    : inv.command === "install" || inv.command === "upgrade"
    ? lock.recordDeploy()
    : undefined;
  await what?.catch((err: unknown) =>
    report.info(`could not update the deploy record: ${err instanceof Error ? err.message : err}`)
  );
}

async function release(
  inv: Invocation,
  where: string,
  lock: QueuedLock,
  report: Reporter,
): Promise<void> {
  try {
    await lock.release();
    if (!lock.lost.aborted) {
      report.info(`released ${where}`);
      report.event("Released", `released ${where}`);
    }
  } catch (err) {
    // helm's outcome is what the job reports; a Lease left behind only expires later.
    report.info(
      `could not release ${where}, it expires ${inv.leaseDurationSeconds}s after the last ` +
        `renewal: ${err instanceof Error ? err.message : err}`,
    );
  }
}

function who(conn: KubeConnection) {
  return { namespace: conn.namespace, user: conn.user, server: conn.server };
}

function disposable(client: KubeClient): KubeClient & Disposable {
  return Object.assign(client, { [Symbol.dispose]: () => client.close() });
}

/** The reporter, with Events recorded on the lock through `client`. */
function withEvents(
  say: Omit<Reporter, "event">,
  client: KubeClient,
  namespace: string,
  release: string,
  identity: string,
): Reporter & { flush(): Promise<void> } {
  const annotations = lockAnnotations({ command: "" });
  const job = annotations["helm-lock.dev/ci-job-url"] ??
    `${annotations["helm-lock.dev/user"] ?? "?"}@${annotations["helm-lock.dev/host"] ?? "?"}`;
  const events = eventRecorder(client, {
    namespace,
    kind: "Lease",
    apiVersion: "coordination.k8s.io/v1",
    name: lockName(release),
    instance: identity,
    job,
  }, say.info);
  return { ...say, event: events.record, flush: () => events.flush() };
}
