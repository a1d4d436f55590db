/**
 * Dynamic imports that Deno does not read ahead: it reads and analyses every module an
 * `import()` names with a string literal (and resolves their npm packages) before the program
 * runs, while a specifier made at run time is read only when imported. `deno compile` cannot
 * see them either: `scripts/compile.ts` passes each to `--include` (`LATER_MODULES`, kept in
 * step by tests/layout/layout_test.ts).
 *
 * @module
 */

/** `importLater<typeof import("./x.ts")>(new URL("./x.ts", import.meta.url))`. */
export function importLater<T>(url: URL): Promise<T> {
  return import(url.href);
}
