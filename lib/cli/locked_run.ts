/**
 * What `helm lock <command> <release> ...` does once its command line is understood: take
 * the Lease, recover the release if it is stuck, run helm with signals forwarded, and
 * always release the Lease (DESIGN §2–§4).
 *
 * @module
 */
import type { Invocation } from "./args.ts";
import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import {
  findHelm,
  guardHelm,
  helmBin,
  helmIsScript,
  type HelmRun,
  helmSpawn,
} from "../helm/exec.ts";
import { heldByAncestor, setHeldLock } from "../helm/nesting.ts";
import { startedByHelm, watchParent } from "../helm/parent.ts";
import { runHelmDirectly } from "./passthrough.ts";
import { holderIdentity, lockAnnotations } from "../lock/identity.ts";
import { apiError } from "../kube/api_error.ts";
import { connect, type KubeConnection } from "../kube/connection.ts";
import type { KubeClient } from "../kube/rest.ts";
import type { WaitProgress } from "../lock/lock.ts";
import type { QueuedLock } from "../lock/queue.ts";
import { redactCommandLine } from "../redact.ts";
import { type Fenced, fenceHelm } from "./fenced.ts";
import { EarlyHelm } from "./early_helm.ts";
import { importLater } from "../import_later.ts";

/** Where {@linkcode lockedRun} reports what it does. */
export interface Reporter {
  /** One line a user should see (already without the `helm-lock:` prefix). */
  info(line: string): void;
  /** Detail shown with `--debug` / `HELM_DEBUG`. */
  debug(line: string): void;
}

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;
/** The signal count at which helm is killed instead of asked to stop (see `runHelm`). */
const KILL_AT_SIGNAL = 3;
type ForwardedSignal = keyof typeof SIGNAL_NUMBERS;

/** Signals received so far; the first decides the exit code. */
class Signals {
  readonly #controller = new AbortController();
  #received: ForwardedSignal[] = [];
  #listeners: Array<[ForwardedSignal, () => void]> = [];
  onSignal: (signal: ForwardedSignal, count: number) => void = () => {};

  /** Aborted at the first SIGINT or SIGTERM. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get first(): ForwardedSignal | undefined {
    return this.#received[0];
  }

  /** Acts as if `sig` had been received (the plugin's parent helm is gone). */
  deliver(sig: ForwardedSignal): void {
    this.#received.push(sig);
    this.#controller.abort(
      new HelmLockError(ExitCode.Internal, `Interrupted by ${sig}`),
    );
    this.onSignal(sig, this.#received.length);
  }

  listen(): void {
    for (const sig of Object.keys(SIGNAL_NUMBERS) as ForwardedSignal[]) {
      const handler = () => this.deliver(sig);
      Deno.addSignalListener(sig, handler);
      this.#listeners.push([sig, handler]);
    }
  }

  close(): void {
    for (const [sig, handler] of this.#listeners) Deno.removeSignalListener(sig, handler);
    this.#listeners = [];
  }

  /** 128 + the number of the first signal, the shell's convention. */
  exitCode(): number {
    return 128 + SIGNAL_NUMBERS[this.first ?? "SIGTERM"];
  }
}

/**
 * The lock's and recovery's modules, loaded once helm has been started (early_helm.ts): their
 * loading then overlaps helm's start-up instead of delaying it.
 */
const lockModules = () =>
  Promise.all([
    importLater<typeof import("../lock/queue.ts")>(new URL("../lock/queue.ts", import.meta.url)),
    importLater<typeof import("../helm/release.ts")>(
      new URL("../helm/release.ts", import.meta.url),
    ),
    importLater<typeof import("../helm/storage.ts")>(
      new URL("../helm/storage.ts", import.meta.url),
    ),
    importLater<typeof import("../kube/rest.ts")>(new URL("../kube/rest.ts", import.meta.url)),
    importLater<typeof import("../kube/namespace.ts")>(
      new URL("../kube/namespace.ts", import.meta.url),
    ),
  ]).then(([queue, release, storage, rest, namespace]) => ({
    ...queue,
    ...release,
    ...storage,
    ...rest,
    ...namespace,
  }));
type LockModules = Awaited<ReturnType<typeof lockModules>>;

function describeHolder(p: WaitProgress, { ordinal, describeJob }: LockModules): string {
  const h = p.holder;
  const parts = [];
  if (p.queue && p.queue.place > 1 && p.queue.ahead) {
    parts.push(`${ordinal(p.queue.place)} in line behind ${describeJob(p.queue.ahead)}`);
  } else if (p.queue) {
    parts.push("next in line");
  }
  parts.push(`held by ${h.identity}`);
  if (h.ciJobUrl) parts.push(`CI job ${h.ciJobUrl}`);
  if (h.user) parts.push(`user ${h.user}`);
  if (p.heldForMs !== undefined) parts.push(`for ${roughDuration(p.heldForMs)}`);
  return parts.join(", ");
}

/**
 * Runs the invocation under the lock and returns the exit code to end with: helm's own, or
 * 128 + signal when interrupted.
 *
 * @throws {HelmLockError} for a helm that cannot start (before any request), a lock timeout,
 *   a lost lock, a failed recovery, an unreachable or refusing API server; the lock is
 *   released before it is thrown.
 */
export async function lockedRun(inv: Invocation, report: Reporter): Promise<number> {
  // Before any request: a helm that cannot start must not wait for, or hold, the lock.
  findHelm();
  const conn = await connect(inv.cluster);
  // One connection for every request of the run, made once helm has been started.
  const clients: KubeClient[] = [];
  try {
    return await lockedRunWith(inv, report, conn, clients);
  } finally {
    for (const client of clients) client.close();
  }
}

async function lockedRunWith(
  inv: Invocation,
  report: Reporter,
  conn: KubeConnection,
  clients: KubeClient[],
): Promise<number> {
  const lease = `helm-lock-${inv.release}`;
  const where = `lock ${lease} in namespace "${conn.namespace}"`;
  report.debug(`API server ${conn.server} as ${conn.user}`);

  const ancestor = heldByAncestor(conn.namespace, inv.release);
  if (ancestor) {
    // Run as helm by the helm-lock that holds this very lock (HELM_BIN or PATH lead back to
    // helm-lock): waiting would wait for ourselves.
    report.debug(
      `running helm directly: the ${where} is held by ${ancestor.identity}, the helm-lock ` +
        `that started this one`,
    );
    return await runHelmDirectly(inv.helmArgs);
  }

  const signals = new Signals();
  signals.listen();
  // Started now: where the guard is a watchdog process, it starts while the lock is taken.
  const guard = guardHelm();
  const unwatchParent = startedByHelm(Deno.env.toObject())
    ? watchParent((pid) => {
      report.info(`the helm that started helm-lock (pid ${pid}) is gone: acting as on SIGTERM`);
      signals.deliver("SIGTERM");
    })
    : () => {};
  let held: QueuedLock | undefined;
  let fence: Fenced | undefined;
  let early: EarlyHelm | undefined;
  try {
    const identity = holderIdentity();
    report.debug(`holder identity ${identity}`);
    // helm starts now and waits at its fence's gate for the lock (early_helm.ts).
    early = EarlyHelm.start(inv, conn, {
      namespace: conn.namespace,
      release: inv.release,
      identity,
    }, report);
    const modules = await lockModules();
    const commandLine = redactCommandLine(inv.helmArgs);
    const { acquireInOrder, ensureNamespace, isSuperseded } = modules;
    const client = modules.kubeClient(conn);
    clients.push(client);
    // Only where helm itself creates it: on the install path (install, upgrade --install), and
    // never on a --dry-run. `upgrade --create-namespace` without --install fails in helm ("has
    // no deployed releases") and must not leave a namespace behind.
    if (inv.createNamespace && inv.install && !inv.dryRun) {
      try {
        if (await ensureNamespace(client, conn.namespace)) {
          report.info(
            `created namespace "${conn.namespace}" (--create-namespace) to hold the lock`,
          );
        }
      } catch (err) {
        throw apiError(err, {
          verb: "create",
          resource: "namespaces",
          namespace: conn.namespace,
          user: conn.user,
          server: conn.server,
        });
      }
    }

    const waitStart = Date.now();
    try {
      held = await acquireInOrder({
        mode: inv.queue,
        ...(inv.orderKey === undefined ? {} : { orderKey: inv.orderKey }),
        client,
        namespace: conn.namespace,
        release: inv.release,
        identity,
        annotations: lockAnnotations({ command: `helm ${commandLine}` }),
        timeoutMs: inv.lockTimeoutMs,
        leaseDurationSeconds: inv.leaseDurationSeconds,
        createNamespaceHint: inv.install && !inv.createNamespace,
        user: conn.user,
        server: conn.server,
        signal: early ? AbortSignal.any([signals.signal, early.exited]) : signals.signal,
        warn: report.info,
        onProgress: (p) => report.info(`waiting for ${where}: ${describeHolder(p, modules)}`),
        onQueued: (ticket) => {
          report.debug(`queued for ${where} with ticket ${ticket}`);
          early?.abandon("the lock is taken: helm starts again once it is ours", report)
            .catch(() => {});
        },
      });
    } catch (e) {
      if (signals.first) {
        report.info(`${signals.first} while waiting for ${where}: helm did not run`);
        return signals.exitCode();
      }
      const exited = earlyExit(early, report);
      if (exited !== undefined) return exited;
      if (inv.supersededOk && isSuperseded(e)) {
        report.info(`${e.message}; exit 0 (--lock-superseded-ok)`);
        return 0;
      }
      throw e;
    }
    report.info(`acquired ${where} after ${roughDuration(Date.now() - waitStart)}`);
    setHeldLock({ namespace: conn.namespace, release: inv.release, identity });
    const exited = earlyExit(early, report);
    if (exited !== undefined) return exited;
    const lock = held;
    // The fence of every helm started from now on: recovery's, and helm's when it did not start
    // early. With an early helm it is opened only if recovery runs helm.
    const lockFence = () =>
      fence ??= fenceHelm({ ...inv.cluster, fence: inv.fence }, conn, lock, report, {
        quiet: early !== undefined, // The early helm's fence is planned the same way.
      });
    if (!early) lockFence();

    if (inv.recover && (inv.command === "install" || inv.command === "upgrade")) {
      if (inv.dryRun) {
        report.info("--dry-run: the release is neither checked nor recovered");
      } else {
        try {
          const signal = AbortSignal.any([signals.signal, held.lost]);
          await recover(
            inv,
            client,
            { namespace: conn.namespace, signal, env: () => lockFence().env },
            report,
            modules,
          );
        } catch (e) {
          // A signal or the lost lock stopped recovery's helm (SIGTERM): say that, not how
          // helm died of it.
          if (!signals.first && !held.lost.aborted) throw e;
        }
      }
    }
    if (signals.first) {
      report.info(`${signals.first} received: helm did not run`);
      return signals.exitCode();
    }
    held.lost.throwIfAborted();
    const code = await runHelm(inv, commandLine, held, signals, report, lockFence, early);
    if (code === 0 && (inv.command === "install" || inv.command === "upgrade") && !inv.dryRun) {
      // Later jobs with a lower --lock-order-key are refused from now on.
      await held.recordDeploy().catch((err) =>
        report.info(`could not record the deploy on ${where}: ${err?.message ?? err}`)
      );
    }
    return code;
  } finally {
    // An early helm not running by now never will under this lock (it sent nothing).
    await early?.abandon("helm-lock is not running it", report);
    // helm is done: nothing may pass once the Lease is released.
    await early?.fence.close();
    await fence?.close();
    // Signal listeners stay until the lock is released: a repeated SIGTERM must not end the
    // process before the Lease is deleted, or the next job waits for it to expire.
    if (held?.lost.aborted) {
      // Lost by the renew deadline, a renewal may still have landed: release that too.
      await held.release().catch((err) => report.debug(`releasing a lost lock: ${err}`));
    } else if (held) {
      try {
        await held.release();
        report.info(`released ${where}`);
      } catch (err) {
        // helm's outcome is what the job reports; a Lease left behind only expires later.
        const why = err instanceof Error ? err.message : String(err);
        report.info(
          `could not release ${where}, it expires ${inv.leaseDurationSeconds}s after the last ` +
            `renewal: ${why}`,
        );
      }
    }
    setHeldLock(undefined);
    unwatchParent();
    signals.close();
    await guard.close();
    await Promise.all([early?.fence.removed(), fence?.removed()]);
  }
}

/** Reads the release and, when it is stuck or failed, recovers it (DESIGN §3). */
async function recover(
  inv: Invocation,
  client: KubeClient,
  opts: { namespace: string; signal: AbortSignal; env: () => Record<string, string> },
  report: Reporter,
  { kubeRecords, planRecovery, readRelease, recoverRelease, storageDriver }: LockModules,
): Promise<void> {
  const { namespace, signal, env } = opts;
  // helm's records are read (and a stale revision unlocked) directly for the drivers
  // helm-lock knows; other drivers go through helm.
  const driver = storageDriver(Deno.env.get("HELM_DRIVER"));
  const readOpts = {
    namespace,
    signal,
    // Read only when a helm is started (release.ts), so the fence opens only then.
    get env() {
      return env();
    },
    ...(driver ? { records: kubeRecords(client, namespace, driver) } : {}),
  };
  const state = await readRelease(inv.release, inv.globalArgs, readOpts);
  const plan = planRecovery(state, {
    command: inv.command,
    install: inv.install,
    release: inv.release,
    namespace,
  });
  if (plan.action === "proceed") report.info(plan.reason);
  await recoverRelease(inv.release, plan, inv.globalArgs, report.info, readOpts);
}

/** The exit code of an early helm that exited by itself before it reached the API server. */
function earlyExit(early: EarlyHelm | undefined, report: Reporter): number | undefined {
  const status = early?.exitedEarly;
  if (!status) return undefined;
  report.info(`helm exited with code ${status.code} before it reached the API server`);
  return status.code;
}

async function runHelm(
  inv: Invocation,
  commandLine: string,
  held: QueuedLock,
  signals: Signals,
  report: Reporter,
  lockFence: () => Fenced,
  early: EarlyHelm | undefined,
): Promise<number> {
  const opened = early?.open(held);
  const exited = earlyExit(early, report);
  if (exited !== undefined) return exited;
  report.info(`running helm ${commandLine}`);
  const fence = opened && early ? early.fence : lockFence();
  let helm: HelmRun;
  // Whether what runs is helm itself, not a script (whose helm may outlive it), for the kept
  // cache below: read while helm runs, not after. An early helm never is a script.
  let helmItself = true;
  if (opened) helm = opened;
  else {
    const bin = helmBin();
    helm = helmSpawn(inv.helmArgs, fence.env, { bin });
    helmItself = !helmIsScript(bin);
  }
  signals.onSignal = (sig, count) => {
    if (count < KILL_AT_SIGNAL) {
      // Helm ≥ 3.7 cancels on SIGINT/SIGTERM and marks the release failed, not pending. A
      // repeated signal is forwarded too (helm ignores it): CI runners and shell wrappers
      // often deliver the same SIGTERM twice, and killing helm for that would leave the very
      // pending release helm-lock exists to prevent.
      report.info(
        count === 1
          ? `${sig} received: forwarding it to helm and waiting for helm to exit`
          : `${sig} received again: still waiting for helm; a third signal kills it`,
      );
      helm.kill(sig);
    } else {
      report.info(`${sig} received ${count} times: killing helm (the next run recovers it)`);
      helm.kill("SIGKILL");
    }
  };
  const onLost = () => {
    report.info(`lost ${inv.release}'s lock while helm ran: stopping helm with SIGTERM`);
    helm.kill("SIGTERM");
  };
  held.lost.addEventListener("abort", onLost, { once: true });
  const status = await helm.status;
  // helm has exited by itself: its cache and port may serve the next run (kube_cache.ts). Only
  // when it is helm itself and nothing stopped it (a signal, a lost lock): then no process it
  // started can be left.
  const stopped = signals.first !== undefined || held.lost.aborted || status.signal !== null;
  if (!stopped && helmItself) fence.helmDone();
  await fence.close();
  held.lost.removeEventListener("abort", onLost);
  if (held.lost.aborted) {
    const reason = held.lost.reason;
    throw reason instanceof HelmLockError ? reason : new HelmLockError(
      ExitCode.LockLost,
      `Lost the lock of release "${inv.release}" while helm ran: helm was stopped`,
      { cause: reason },
    );
  }
  if (signals.first) return signals.exitCode();
  report.debug(`helm exited with code ${status.code}`);
  return status.code;
}
