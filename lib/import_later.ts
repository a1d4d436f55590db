/**
 * Dynamic imports that Deno does not read (nor resolve npm packages for) before the program
 * runs, as it does for an `import()` of a string literal. `scripts/compile.ts` must `--include`
 * each (`LATER_MODULES`, kept in step by tests/layout/layout_test.ts).
 *
 * @module
 */

/** `importLater<typeof import("./x.ts")>(new URL("./x.ts", import.meta.url))`. */
export function importLater<T>(url: URL): Promise<T> {
  return import(url.href);
}
