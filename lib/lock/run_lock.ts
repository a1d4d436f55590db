/**
 * The lock stage of a run: take the lock (creating the namespace when helm would), record its
 * life as Events, and give it back.
 * @module
 */

import { roughDuration } from "../duration.ts";
import { apiError } from "../kube/api_error.ts";
import type { KubeConnection } from "../kube/connection.ts";
import { eventRecorder } from "../kube/events.ts";
import { type KubeClient, kubeClient } from "../kube/rest.ts";
import { redactCommandLine } from "../redact.ts";
import type { Reporter } from "../report.ts";
import { Annotation, holderIdentity, lockAnnotations } from "./identity.ts";
import { lockName } from "./names.ts";
import { pipelineOrder } from "./pipeline.ts";
import { describeWait, isSuperseded } from "./queue_view.ts";
import { ensureNamespace, type QueuedLock, takeLock } from "./take.ts";

/** The user's command as the lock stage needs it (the CLI's `Invocation`). */
export interface LockCommand {
  command: string;
  release: string;
  helmArgs: string[];
  install: boolean;
  createNamespace: boolean;
  dryRun: boolean;
  lockTimeoutMs: number;
  leaseDurationSeconds: number;
  queue: "fifo" | "newest";
  orderKey?: number;
  supersededOk: boolean;
}

/** The lock of a run, held. */
export interface RunLock {
  /** `lost` aborts when the lock is taken from us, `validUntil()` gates the fence. */
  readonly held: QueuedLock;
  /** The API server of the lock, which recovery reads helm's records through. */
  readonly client: KubeClient;
  /** The lock as every helm started under it records it (the nesting marker). */
  readonly heldBy: { namespace: string; release: string; identity: string };
  /** The run's lines, and Events on the lock. */
  readonly report: Reporter;
  /** Waits for the Events sent, then closes the API client. */
  close(): Promise<void>;
}

/**
 * Takes the release's lock for a run; `signals` (`helm/signals.ts`) stop the wait.
 *
 * @returns The held lock, or the exit code to end with without it: 128 + signal for a signal
 *   while waiting, 0 when superseded with `--lock-superseded-ok`.
 * @throws {HelmLockError} exit 3 at the timeout, 8 when superseded or outdated, 6 or 7 when
 *   the API server cannot be reached or refuses.
 */
export async function take(
  conn: KubeConnection,
  cmd: LockCommand,
  signals: { signal: AbortSignal; first: string | undefined; exitCode(): number },
  say: Omit<Reporter, "event">,
): Promise<RunLock | number> {
  const { namespace } = conn;
  const { release } = cmd;
  const where = `lock ${lockName(release)} in namespace "${namespace}"`;
  const client = kubeClient(conn);
  const identity = holderIdentity();
  say.debug(`holder identity ${identity}`);
  const me = lockAnnotations({ command: `helm ${redactCommandLine(cmd.helmArgs)}` });
  const events = eventRecorder(client, {
    namespace,
    kind: "Lease",
    apiVersion: "coordination.k8s.io/v1",
    name: lockName(release),
    instance: identity,
    // Who runs us, as each Event names it: the CI job, else user@host.
    job: me[Annotation.ciJobUrl] ?? `${me[Annotation.user] ?? "?"}@${me[Annotation.host] ?? "?"}`,
  }, say.info);
  const report: Reporter = { ...say, event: events.record };
  let lock: QueuedLock;
  let waitingSaid = false;
  let started: number | undefined; // set once the wait begins
  try {
    // Only where helm itself creates it: on the install path, never on a --dry-run.
    if (cmd.createNamespace && cmd.install && !cmd.dryRun) {
      const created = await ensureNamespace(client, namespace).catch((err) => {
        const { user, server } = conn;
        throw apiError(err, { verb: "create", resource: "namespaces", namespace, user, server });
      });
      if (created) {
        report.info(`created namespace "${namespace}" (--create-namespace) to hold the lock`);
      }
    }
    started = Date.now();
    const order = cmd.orderKey !== undefined
      ? { key: cmd.orderKey, scope: "order-key" }
      : pipelineOrder(Deno.env.toObject()) ?? {};
    lock = await takeLock({
      client,
      namespace,
      release,
      identity,
      annotations: me,
      timeoutMs: cmd.lockTimeoutMs,
      leaseDurationSeconds: cmd.leaseDurationSeconds,
      order: { mode: cmd.queue, ...order },
      refuseOutdated: cmd.orderKey !== undefined,
      createNamespaceHint: cmd.install && !cmd.createNamespace,
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
    try {
      if (started !== undefined && signals.first) {
        report.info(`${signals.first} while waiting for ${where}: helm did not run`);
        return signals.exitCode();
      }
      if (isSuperseded(err)) {
        report.event("Superseded", err.message, "Warning");
        if (cmd.supersededOk) {
          report.info(`${err.message}; exit 0 (--lock-superseded-ok)`);
          return 0;
        }
      }
      throw err;
    } finally {
      client.close();
    }
  }
  const after = `acquired ${where} after ${roughDuration(Date.now() - started!)}`;
  report.info(after);
  report.event("Acquired", after);
  return {
    held: lock,
    client,
    heldBy: { namespace, release, identity },
    report,
    async close() {
      await events.flush();
      client.close();
    },
  };
}

/** Gives the lock back, on every path, after updating the deploy record of a success. */
export async function release(
  lock: RunLock,
  cmd: Pick<LockCommand, "command" | "dryRun" | "leaseDurationSeconds">,
  exitCode: number | undefined,
): Promise<void> {
  const { held, report, heldBy } = lock;
  const where = `lock ${lockName(heldBy.release)} in namespace "${heldBy.namespace}"`;
  if (exitCode === 0 && !cmd.dryRun) {
    const what = cmd.command === "uninstall"
      ? held.forgetRelease()
      : cmd.command === "install" || cmd.command === "upgrade"
      ? held.recordDeploy()
      : undefined;
    await what?.catch((err: unknown) =>
      report.info(`could not update the deploy record: ${err instanceof Error ? err.message : err}`)
    );
  }
  try {
    await held.release();
    if (!held.lost.aborted) {
      report.info(`released ${where}`);
      report.event("Released", `released ${where}`);
    }
  } catch (err) {
    // helm's outcome is what the job reports; a Lease left behind only expires later.
    report.info(
      `could not release ${where}, it expires ${cmd.leaseDurationSeconds}s after the last ` +
        `renewal: ${err instanceof Error ? err.message : err}`,
    );
  }
  await lock.close();
}
