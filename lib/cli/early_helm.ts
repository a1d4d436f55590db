/**
 * helm started while the lock is being taken (issue 15). On the uncontended path, taking
 * the lock and checking the release cost about as long as helm's own start-up before its
 * first request (~100 ms), so the two overlap instead of adding up.
 *
 * Nothing of the release is read or written before the lock is held: helm reaches the API
 * server only through its own fenced pass-through (`fenced.ts`), whose gate holds every
 * connection (accepted, unread, nothing dialed) until {@linkcode EarlyHelm.open}, called
 * once the lock is held and the release checked and recovered; from then on the fence
 * works as for any helm. helm's argv, stdin, stdout and stderr are the user's, as always.
 *
 * When helm will not run under this attempt after all (the lock is taken by someone else,
 * an error, a signal, recovery holding helm's connection near client-go's 10 s TLS
 * handshake timeout), {@linkcode EarlyHelm.abandon} stops it with SIGKILL: it has sent
 * nothing (no byte passed the gate), so there is nothing to cancel and nothing to mark
 * failed, and SIGTERM would only make helm print a cancellation for an operation that never
 * began. helm-lock then starts helm again once it holds the lock, as without this.
 *
 * When helm exits by itself before the gate opens (a usage error, a chart that is not
 * there), it never reached the API server: its exit code is the run's, and helm-lock stops
 * waiting for the lock.
 *
 * Not started early: unfenced runs (nothing would hold helm back), a helm that may read
 * stdin (`-f -`: a second start would find it consumed), and a helm that is a script (a
 * wrapper may act before helm starts, and must not be SIGKILLed).
 *
 * @module
 */

import { schedule } from "../async.ts";
import type { Invocation } from "./args.ts";
import { type Fenced, fenceHelm } from "./fenced.ts";
import type { KubeConnection } from "../kube/connection.ts";
import type { HeldLock } from "../lock/lock.ts";
import { helmBin, helmIsScript, type HelmRun, helmSpawn } from "../helm/exec.ts";
import type { HeldBy } from "../helm/nesting.ts";

/** Where the reasons go (`locked_run.ts`'s Reporter). */
interface Reporter {
  info(line: string): void;
  debug(line: string): void;
}

/**
 * How long a connection of helm's may wait at the closed gate before helm is abandoned:
 * half of client-go's TLS handshake timeout (10 s), which starts when helm connects.
 */
const HOLD_LIMIT_MS = 5_000;

/** helm's arguments may make it read stdin: a `-` value (`-f -`, `--values=-`, `-f-`). */
export function mayReadStdin(args: readonly string[]): boolean {
  return args.some((a) => a === "-" || a.endsWith("=-") || /^-[^-=]*-$/.test(a));
}

/** The lock as the early fence sees it: not valid until one is attached. */
class PendingLock {
  #held: HeldLock | undefined;
  readonly #lost = new AbortController();

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  validUntil(): number {
    return this.#held ? this.#held.validUntil() : -Infinity;
  }

  attach(held: HeldLock): void {
    this.#held = held;
    const lose = () => this.#lost.abort(held.lost.reason);
    if (held.lost.aborted) lose();
    else held.lost.addEventListener("abort", lose, { once: true });
  }
}

/** helm, started before the lock is held, held at the gate of its fence. */
export class EarlyHelm {
  readonly #helm: HelmRun;
  readonly #fence: Fenced;
  readonly #openGate: () => void;
  readonly #lock: PendingLock;
  readonly #exited = new AbortController();
  #state: "held" | "open" | "abandoned" | "exited" = "held";
  #exit: Deno.CommandStatus | undefined;
  #cancelHold: (() => void) | undefined;

  private constructor(helm: HelmRun, fence: Fenced, lock: PendingLock, openGate: () => void) {
    this.#openGate = openGate;
    this.#helm = helm;
    this.#fence = fence;
    this.#lock = lock;
    helm.status.then((status) => {
      if (this.#state !== "held") return;
      this.#state = "exited";
      this.#exit = status;
      this.#clearTimer();
      this.#exited.abort();
    });
  }

  /**
   * Starts helm held at a closed gate, when it can be (see the module documentation).
   *
   * @param inv The invocation: helm's argv and the connection flags.
   * @param conn The connection helm will use.
   * @param lock The lock helm will run under, for its nesting marker.
   * @returns The held helm, or `undefined` when it is started the usual way.
   * @throws {HelmLockError} when helm cannot be started at all.
   */
  static start(
    inv: Invocation,
    conn: KubeConnection,
    lock: HeldBy,
    report: Reporter,
  ): EarlyHelm | undefined {
    const later = (why: string) => {
      report.debug(`helm starts once the lock is held: ${why}`);
      return undefined;
    };
    if (!inv.fence) return later("--lock-no-fence");
    if (mayReadStdin(inv.helmArgs)) return later("it may read stdin (a - value)");
    // Resolved once, here and for the spawn (a walk of PATH when $HELM_BIN is not set).
    const bin = helmBin();
    if (helmIsScript(bin)) return later("it is a script, or could not be read");
    const pending = new PendingLock();
    const made: { early?: EarlyHelm } = {};
    const gate = Promise.withResolvers<void>();
    const fence = fenceHelm({ ...inv.cluster, fence: true }, conn, pending, report, {
      gate: gate.promise,
      quiet: true,
      onHeld: () => made.early && made.early.#startHoldTimer(report),
    });
    if (Object.keys(fence.env).length === 0) {
      fence.close().catch(() => {});
      return later("it cannot be fenced");
    }
    let helm: HelmRun;
    try {
      helm = helmSpawn(inv.helmArgs, fence.env, { lock, bin });
    } catch (e) {
      fence.close().catch(() => {});
      throw e;
    }
    made.early = new EarlyHelm(helm, fence, pending, gate.resolve);
    report.debug(`started helm (pid ${helm.pid}) early: its requests wait for the lock`);
    return made.early;
  }

  /** Aborted when helm exits by itself before the gate opened. */
  get exited(): AbortSignal {
    return this.#exited.signal;
  }

  /** helm's status when it exited by itself before the gate opened. */
  get exitedEarly(): Deno.CommandStatus | undefined {
    return this.#exit;
  }

  /** The fence helm runs behind (closed when helm is done). */
  get fence(): Fenced {
    return this.#fence;
  }

  /**
   * The lock is held and the release ready: lets helm's requests through.
   *
   * @returns The running helm, or `undefined` when it was abandoned or has exited.
   */
  open(held: HeldLock): HelmRun | undefined {
    if (this.#state !== "held") return undefined;
    this.#state = "open";
    this.#clearTimer();
    this.#lock.attach(held);
    this.#openGate();
    return this.#helm;
  }

  /**
   * helm will not run under this attempt: SIGKILL (it has sent nothing), and the fence
   * closed. Does nothing once the gate is open or helm has exited.
   */
  async abandon(why: string, report: Reporter): Promise<void> {
    if (this.#state !== "held") return;
    this.#state = "abandoned";
    this.#clearTimer();
    report.debug(`stopping the early helm (pid ${this.#helm.pid}), which sent nothing: ${why}`);
    this.#helm.kill("SIGKILL");
    await this.#helm.status;
    // helm (never a script here) is gone and sent nothing: the cache it was given, an earlier
    // run's kept one, goes back untouched for the next run.
    this.#fence.helmDone();
    await this.#fence.close();
  }

  #startHoldTimer(report: Reporter): void {
    if (this.#state !== "held" || this.#cancelHold !== undefined) return;
    this.#cancelHold = schedule(HOLD_LIMIT_MS, () => {
      this.abandon(
        `its connection waited ${HOLD_LIMIT_MS / 1000}s for the lock and the release; helm ` +
          `starts again once they are ready`,
        report,
      ).catch(() => {});
    });
  }

  #clearTimer(): void {
    this.#cancelHold?.();
    this.#cancelHold = undefined;
  }
}
