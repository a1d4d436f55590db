/** Where a run reports: `main.ts` prefixes its lines with `helm-lock:` on stderr. */
export interface Reporter {
  /** One line a user should see. */
  info(line: string): void;
  /** Detail shown with `--debug` / `HELM_DEBUG`. */
  debug(line: string): void;
  /** A Kubernetes Event on the lock (nothing before the run knows its cluster). */
  event(reason: string, note: string, type?: "Normal" | "Warning"): void;
}
