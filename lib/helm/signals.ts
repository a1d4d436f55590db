/**
 * SIGINT and SIGTERM during a locked run (DESIGN §4): the first stops the wait for the lock or
 * is forwarded to helm, and decides the exit code (128 + signal). As a plugin, helm forwards
 * nothing and a CI runner may SIGTERM only the `helm` running us: when that parent is gone,
 * helm-lock acts as on SIGTERM (`parent.ts`).
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import { startedByHelm, watchParent } from "./parent.ts";

const NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/** A signal helm-lock forwards. */
export type ForwardedSignal = keyof typeof NUMBERS;

/** The signals received so far, from {@linkcode listenForSignals} until disposed. */
export class Interrupts implements Disposable {
  readonly #controller = new AbortController();
  readonly #received: ForwardedSignal[] = [];
  readonly #listeners: Array<[ForwardedSignal, () => void]> = [];
  #unwatchParent: () => void = () => {};
  /** Called at every signal with its count (helm's run forwards them). */
  onSignal: (signal: ForwardedSignal, count: number) => void = () => {};

  /** Aborted at the first signal. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The first signal, which decides the exit code. */
  get first(): ForwardedSignal | undefined {
    return this.#received[0];
  }

  /** 128 + the first signal's number, the shell's convention. */
  exitCode(): number {
    return 128 + NUMBERS[this.first ?? "SIGTERM"];
  }

  deliver(sig: ForwardedSignal): void {
    this.#received.push(sig);
    this.#controller.abort(new HelmLockError(ExitCode.Internal, `Interrupted by ${sig}`));
    this.onSignal(sig, this.#received.length);
  }

  listen(say: (line: string) => void): this {
    for (const sig of Object.keys(NUMBERS) as ForwardedSignal[]) {
      const handler = () => this.deliver(sig);
      Deno.addSignalListener(sig, handler);
      this.#listeners.push([sig, handler]);
    }
    if (startedByHelm(Deno.env.toObject())) {
      this.#unwatchParent = watchParent((pid) => {
        say(`the helm that started helm-lock (pid ${pid}) is gone: acting as on SIGTERM`);
        this.deliver("SIGTERM");
      });
    }
    return this;
  }

  /**
   * Stops listening. Only once the lock is released: a repeated SIGTERM must not end the
   * process before the Lease is deleted.
   */
  [Symbol.dispose](): void {
    for (const [sig, handler] of this.#listeners) Deno.removeSignalListener(sig, handler);
    this.#listeners.length = 0;
    this.#unwatchParent();
  }
}

/** Starts listening for SIGINT, SIGTERM and (as a plugin) the parent helm's exit. */
export function listenForSignals(say: (line: string) => void): Interrupts {
  return new Interrupts().listen(say);
}
