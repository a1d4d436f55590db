/**
 * node:path's few operations kubeconfig.ts needs, without node:path: its first import starts
 * Deno's Node layer (docs/performance.md). `windows`: Windows' rules (`\` or `/`, `\` written).
 * @module
 */

const WINDOWS = Deno.build.os === "windows";

/** Windows' drive or UNC root (`C:`, `\\server\share`), or "" (always "" elsewhere). */
function windowsRoot(path: string, windows: boolean): string {
  if (!windows) return "";
  return /^[A-Za-z]:/.exec(path)?.[0] ?? /^[\\/]{2}[^\\/]+[\\/]+[^\\/]+/.exec(path)?.[0] ?? "";
}

/** Whether `path` is absolute (`path.isAbsolute`). */
export function isAbsolute(path: string, windows = WINDOWS): boolean {
  return windows ? /^(?:[A-Za-z]:)?[\\/]/.test(path) : path.startsWith("/");
}

/** `dir` and `path` joined and normalised lexically (`path.join`). */
export function joinPath(dir: string, path: string, windows = WINDOWS): string {
  const joined = dir === "" ? path : path === "" ? dir : `${dir}/${path}`;
  if (joined === "") return ".";
  const sep = windows ? "\\" : "/";
  const root = windowsRoot(joined, windows);
  const rest = joined.slice(root.length);
  const rooted = windows ? /^[\\/]/.test(rest) : rest.startsWith("/");
  const parts: string[] = [];
  for (const part of rest.split(windows ? /[\\/]+/ : /\/+/)) {
    if (part === "" || part === ".") continue;
    if (part === ".." && parts.length > 0 && parts.at(-1) !== "..") parts.pop();
    else if (part !== ".." || !rooted) parts.push(part);
  }
  const trailing = windows ? /[\\/]$/.test(rest) : rest.endsWith("/");
  let body = parts.join(sep);
  if (trailing && body !== "") body += sep;
  const head = root.replaceAll("/", windows ? "\\" : "/") + (rooted ? sep : "");
  return head + body || (root ? root : ".");
}

/** The directory part of `path` (`path.dirname`). */
export function dirname(path: string, windows = WINDOWS): string {
  const root = windowsRoot(path, windows);
  const isSep = (c: string | undefined) => c === "/" || (windows && c === "\\");
  let end = path.length;
  while (end > root.length + 1 && isSep(path[end - 1])) end--;
  while (end > root.length && !isSep(path[end - 1])) end--;
  if (end === root.length) return root === "" ? "." : root;
  // Drop the separator before the last segment, but not the root's.
  return path.slice(0, end > root.length + 1 ? end - 1 : end);
}
