/**
 * SIGINT and SIGTERM during a locked run (DESIGN §4, "Signals and the watchdog").
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import { startedByHelm, watchParent } from "./parent.ts";

const NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

export type ForwardedSignal = keyof typeof NUMBERS;

/** The signals received so far, from {@linkcode listenForSignals} until disposed. */
export class Interrupts implements Disposable {
  readonly #controller = new AbortController();
  readonly #received: ForwardedSignal[] = [];
  readonly #listeners: Array<[ForwardedSignal, () => void]> = [];
  #unwatchParent: () => void = () => {};
  /** Called at every signal with its count (helm's run forwards them). */
  onSignal: (signal: ForwardedSignal, count: number) => void = () => {};

  constructor(say: (line: string) => void) {
    for (const sig of Object.keys(NUMBERS) as ForwardedSignal[]) {
      const handler = () => this.#deliver(sig);
      Deno.addSignalListener(sig, handler);
      this.#listeners.push([sig, handler]);
    }
    // Standalone, `nohup helm-lock ... &` outliving its shell is what the user asked for.
    if (startedByHelm(Deno.env.toObject())) {
      this.#unwatchParent = watchParent((pid) => {
        say(`the helm that started helm-lock (pid ${pid}) is gone: acting as on SIGTERM`);
        this.#deliver("SIGTERM");
      });
    }
  }

  /** Aborted at the first signal. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The first signal decides the exit code. */
  get first(): ForwardedSignal | undefined {
    return this.#received[0];
  }

  exitCode(): number {
    return 128 + NUMBERS[this.first ?? "SIGTERM"];
  }

  #deliver(sig: ForwardedSignal): void {
    this.#received.push(sig);
    this.#controller.abort(new HelmLockError(ExitCode.Internal, `Interrupted by ${sig}`));
    this.onSignal(sig, this.#received.length);
  }

  /** Only once the lock is released: a repeated SIGTERM must not end us before the release. */
  [Symbol.dispose](): void {
    for (const [sig, handler] of this.#listeners) Deno.removeSignalListener(sig, handler);
    this.#listeners.length = 0;
    this.#unwatchParent();
  }
}

/** Starts listening for SIGINT, SIGTERM and (as a plugin) the parent helm's exit. */
export function listenForSignals(say: (line: string) => void): Interrupts {
  return new Interrupts(say);
}
