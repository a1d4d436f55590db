/**
 * Where a run says what it does: lines for the user (stderr, `helm-lock:` prefixed by
 * `main.ts`), detail under `--debug`, and Kubernetes Events on the lock (`kube/events.ts`).
 *
 * @module
 */

/** Where a run reports. */
export interface Reporter {
  /** One line a user should see. */
  info(line: string): void;
  /** Detail shown with `--debug` / `HELM_DEBUG`. */
  debug(line: string): void;
  /** A Kubernetes Event on the lock (nothing before the run knows its cluster). */
  event(reason: string, note: string, type?: "Normal" | "Warning"): void;
}
