/**
 * How helm-lock was invoked, for its messages: `helm lock` when helm runs it as a plugin,
 * `helm-lock` when it runs on its own (from a script, CI or helmfile), so a command a message
 * quotes is one the user can run as written.
 *
 * @module
 */

/** The name `plugin.yaml` gives the plugin. */
const PLUGIN_NAME = "lock";

/**
 * The program name as the user typed it. Helm (3 and 4) sets `HELM_PLUGIN_NAME` and
 * `HELM_PLUGIN_DIR` for the plugins it runs; `HELM_BIN` alone says nothing, since users set it
 * for the standalone binary too. Another plugin's name (helm-lock started by a different
 * plugin) means standalone.
 *
 * @param env The environment to read. @default {Deno.env.toObject()}
 * @returns `"helm lock"` or `"helm-lock"`.
 */
export function programName(env: Record<string, string | undefined> = Deno.env.toObject()): string {
  return env.HELM_PLUGIN_DIR && env.HELM_PLUGIN_NAME === PLUGIN_NAME
    ? `helm ${PLUGIN_NAME}`
    : "helm-lock";
}
