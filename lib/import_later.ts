/**
 * Dynamic imports that Deno does not read ahead. Before a module runs, Deno reads and analyses
 * every module that its `import()` calls name with a string literal, and resolves the npm
 * packages those import (helm-lock's own commands, its help, @kubernetes/client-node for an
 * auth provider). A specifier made at run time is read only when it is imported.
 *
 * `deno compile` cannot see these imports either: `scripts/compile.ts` passes each module to
 * `--include` (`LATER_MODULES`), and tests/layout/layout_test.ts keeps the two in step.
 *
 * @module
 */

/**
 * Imports a local module, typed by the caller:
 * `importLater<typeof import("./x.ts")>(new URL("./x.ts", import.meta.url))`.
 */
export function importLater<T>(url: URL): Promise<T> {
  return import(url.href);
}
