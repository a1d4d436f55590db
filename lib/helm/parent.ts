/**
 * Plugin mode: helm does not forward signals to plugins. A CI runner that SIGTERMs only its
 * direct child (the `helm` running `helm lock ...`) makes helm exit at once and leaves
 * helm-lock re-parented. helm-lock watches for that and acts as on SIGTERM.
 *
 * @module
 */

/** How often the parent process id is checked (a cheap `getppid()`). */
const PARENT_POLL_MS = 200;

/** Whether helm started this process as a plugin (Helm 3 and 4 set these for plugins). */
export function startedByHelm(env: Record<string, string | undefined>): boolean {
  return !!env["HELM_PLUGIN_NAME"] && !!env["HELM_PLUGIN_DIR"];
}

/**
 * Calls `onGone` once when this process's parent has exited (we are re-parented, so the
 * parent process id changes). Standalone runs are left alone: `nohup helm-lock ... &`
 * outliving its shell is what the user asked for.
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
