/**
 * helm does not forward signals to plugins: a CI runner that SIGTERMs only the `helm` running
 * `helm lock ...` leaves helm-lock re-parented, which it watches for.
 *
 * @module
 */

/** `getppid()` is cheap. */
const PARENT_POLL_MS = 200;

/** Whether helm started this process as a plugin. */
export function startedByHelm(env: Record<string, string | undefined>): boolean {
  return !!env["HELM_PLUGIN_NAME"] && !!env["HELM_PLUGIN_DIR"];
}

/**
 * Calls `onGone` once when this process is re-parented.
 *
 * @returns A function that stops watching.
 */
export function watchParent(
  onGone: (pid: number) => void,
  ppid: () => number = () => Deno.ppid,
): () => void {
  const parent = ppid();
  const timer = setInterval(() => {
    if (ppid() === parent) return;
    clearInterval(timer);
    onGone(parent);
  }, PARENT_POLL_MS);
  return () => clearInterval(timer);
}
