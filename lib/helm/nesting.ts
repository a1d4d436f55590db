/**
 * helm-lock run as helm by helm-lock (`HELM_BIN=helm-lock`, helmfile's `--helm-binary`), DESIGN
 * §1. Run from source through a launcher, helm-lock does not know its own path: its child finds
 * it in the marker {@linkcode NESTING_ENV}, trusted only from its parent's pid (a launcher must
 * `exec`).
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";

const NESTING_ENV = "HELM_LOCK_NESTING";

/** After this many helm-locks each started as helm by the previous one, give up. */
const MAX_DEPTH = 8;

/** The lock an ancestor helm-lock holds while its helm runs. */
export interface HeldBy {
  namespace: string;
  release: string;
  /** The holder identity written to the Lease. */
  identity: string;
}

interface Nesting {
  /** The pid of the helm-lock that started `helm`. */
  spawner?: number;
  helm?: string;
  /** Resolved paths known to be helm-lock, not helm. */
  self: string[];
  /** How many helm-locks above this one were started as helm by another. */
  depth: number;
  lock?: HeldBy;
}

/** A missing or unreadable marker means "not nested". */
function readNesting(env: Record<string, string | undefined>): Nesting {
  try {
    const raw = JSON.parse(env[NESTING_ENV] || "{}");
    const nesting: Nesting = {
      self: Array.isArray(raw.self) ? raw.self.filter((s: unknown) => typeof s === "string") : [],
      depth: typeof raw.depth === "number" ? raw.depth : 0,
    };
    if (typeof raw.spawner === "number") nesting.spawner = raw.spawner;
    if (typeof raw.helm === "string") nesting.helm = raw.helm;
    const { namespace, release, identity } = raw.lock ?? {};
    if ([namespace, release, identity].every((s) => typeof s === "string")) {
      nesting.lock = { namespace, release, identity };
    }
    return nesting;
  } catch {
    return { self: [], depth: 0 };
  }
}

function realPath(path: string): string | undefined {
  try {
    return Deno.realPathSync(path);
  } catch {
    return undefined;
  }
}

let cachedSelf: { nesting: Nesting; paths: Set<string> } | undefined;

/** The marker, and the resolved paths that are this helm-lock (read once per process). */
export function self(): { nesting: Nesting; paths: Set<string> } {
  if (cachedSelf) return cachedSelf;
  const nesting = readNesting(Deno.env.toObject());
  // Compiled, helm-lock is its own executable; run from source it is deno, never helm.
  const paths = [...nesting.self, realPath(Deno.execPath())];
  // Only a direct child is the helm its parent started: under a real helm that runs a plugin,
  // the parent is helm.
  if (nesting.spawner === Deno.ppid && nesting.helm) paths.push(realPath(nesting.helm));
  return cachedSelf = { nesting, paths: new Set(paths.filter((p) => p !== undefined)) };
}

/** Where `name` is found on `PATH`, every match in order (as `exec` would try them). */
function onPath(name: string, pathVar: string | undefined): string[] {
  return [...candidates(name, pathVar)];
}

/** The first of {@linkcode onPath}'s paths, found without looking further. */
export function firstOnPath(name: string, pathVar: string | undefined): string | undefined {
  for (const path of candidates(name, pathVar)) return path;
  return undefined;
}

function* candidates(name: string, pathVar: string | undefined): Generator<string> {
  for (const dir of (pathVar ?? "").split(":")) {
    const candidate = `${dir || "."}/${name}`;
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111)) yield candidate;
    } catch {
      // not there
    }
  }
}

/**
 * The helm to run: `$HELM_BIN` when set and not empty (the plugin system sets it to the helm
 * that started us), else `helm` from `PATH`, skipping every candidate in `selfPaths`.
 *
 * @returns The path or name to run; `helm` or `$HELM_BIN` as given when nothing is skipped.
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when every candidate is helm-lock.
 */
export function resolveHelm(
  env: Record<string, string | undefined>,
  selfPaths: ReadonlySet<string>,
): string {
  const bin = env["HELM_BIN"] || undefined;
  const isSelf = (path: string) => selfPaths.has(realPath(path) ?? "");
  const fromBin = bin === undefined ? [] : bin.includes("/") ? [bin] : onPath(bin, env["PATH"]);
  if (bin !== undefined && fromBin.length === 0) return bin; // Not found: let spawning say so.
  // Keep the user's spelling when it is what would run anyway.
  const own = fromBin.find((candidate) => !isSelf(candidate));
  if (own !== undefined) return own === fromBin[0] ? bin! : own;
  // PATH is searched for helm only when $HELM_BIN is unset or leads back to helm-lock.
  const fromPath = onPath("helm", env["PATH"]);
  const found = fromPath.find((candidate) => !isSelf(candidate));
  if (found !== undefined) return found;
  if (fromBin.length === 0 && fromPath.length === 0) return "helm";
  throw new HelmLockError(
    ExitCode.HelmNotFound,
    `Cannot run helm as ${
      bin ? `$HELM_BIN ("${bin}") and ` : ""
    }every helm on PATH lead back to helm-lock: expected the real helm on PATH or in $HELM_BIN`,
  );
}

/**
 * The marker for a helm started at `helm`, with `lock` when it runs under a lock.
 *
 * @throws {HelmLockError} ({@linkcode ExitCode.Internal}) when helm-locks have started each
 *   other as helm too often: a launcher that is not recognized as helm-lock.
 */
export function nestingEnv(helm: string, lock?: HeldBy): Record<string, string> {
  const me = self();
  // Counted whether or not the parent was recognized: a launcher that neither `exec`s nor is
  // recognized still ends here instead of starting itself forever.
  const depth = me.nesting.spawner === undefined ? 0 : me.nesting.depth + 1;
  if (depth >= MAX_DEPTH) {
    throw new HelmLockError(
      ExitCode.Internal,
      `Cannot run helm as "${helm}": helm-lock started itself as helm ${depth} times; ` +
        `expected $HELM_BIN or PATH to lead to the real helm`,
    );
  }
  const marker: Nesting = { spawner: Deno.pid, helm, self: [...me.paths], depth };
  const held = lock ?? me.nesting.lock;
  if (held) marker.lock = held;
  return { [NESTING_ENV]: JSON.stringify(marker) };
}

/** The ancestor holding this release's lock, whose helm this helm-lock is: it must not wait. */
export function heldByAncestor(namespace: string, release: string): HeldBy | undefined {
  const lock = self().nesting.lock;
  return lock && lock.namespace === namespace && lock.release === release ? lock : undefined;
}
