/**
 * helm-lock run as helm by helm-lock: the recursion guard.
 *
 * helm-lock can be named as helm (`HELM_BIN=helm-lock`, a `helm` first on PATH that is
 * helm-lock, helmfile's `--helm-binary`), so the helm it starts may be itself. Two things
 * keep that from looping or deadlocking:
 *
 * - Finding the real helm: candidates are `$HELM_BIN`, then every `helm` on PATH, in order;
 *   one whose resolved path is helm-lock is skipped. helm-lock knows its own path when
 *   compiled (`Deno.execPath()`), but run from source through a launcher script it does not,
 *   so every helm it starts gets the marker variable {@linkcode NESTING_ENV} naming the
 *   path it started and its own pid. A helm-lock that finds the marker with its parent's pid
 *   knows that path is itself (a launcher script must `exec`).
 * - The lock: the marker also carries the release, namespace and holder identity of the lock
 *   held while helm runs. A helm-lock under it asked to lock the same release would wait
 *   for its own lock; it runs helm directly instead, since its ancestor holds the lock.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";

/** The marker variable in the environment of every helm that helm-lock starts. */
export const NESTING_ENV = "HELM_LOCK_NESTING";

/** After this many helm-locks each started as helm by the previous one, give up. */
const MAX_DEPTH = 8;

/** The lock an ancestor helm-lock holds while its helm runs. */
export interface HeldBy {
  namespace: string;
  release: string;
  /** The holder identity written to the Lease. */
  identity: string;
}

/** What the marker records. */
export interface Nesting {
  /** The pid of the helm-lock that started the helm in `helm`. */
  spawner?: number;
  /** The path that helm-lock started as helm. */
  helm?: string;
  /** Resolved paths known to be helm-lock, not helm. */
  self: string[];
  /** How many helm-locks above this one were started as helm by another. */
  depth: number;
  /** The lock held by an ancestor while this process runs, if any. */
  lock?: HeldBy;
}

/** Reads the marker; a missing or unreadable one means "not nested". */
export function readNesting(env: Record<string, string | undefined>): Nesting {
  const text = env[NESTING_ENV];
  if (!text) return { self: [], depth: 0 };
  try {
    const raw = JSON.parse(text);
    const nesting: Nesting = {
      self: Array.isArray(raw.self) ? raw.self.filter((s: unknown) => typeof s === "string") : [],
      depth: typeof raw.depth === "number" ? raw.depth : 0,
    };
    if (typeof raw.spawner === "number") nesting.spawner = raw.spawner;
    if (typeof raw.helm === "string") nesting.helm = raw.helm;
    const lock = raw.lock;
    if (
      lock && typeof lock.namespace === "string" && typeof lock.release === "string" &&
      typeof lock.identity === "string"
    ) {
      nesting.lock = { namespace: lock.namespace, release: lock.release, identity: lock.identity };
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

/** This process: who started it as helm, and the paths that are helm-lock. */
export interface Self {
  nesting: Nesting;
  /** Resolved paths that lead back to helm-lock. */
  paths: Set<string>;
  /** Whether a helm-lock started this process as its helm. */
  startedAsHelm: boolean;
}

let cachedSelf: Self | undefined;

/** Reads the marker and works out which paths are this helm-lock (once per process). */
export function self(): Self {
  if (cachedSelf) return cachedSelf;
  const nesting = readNesting(Deno.env.toObject());
  const paths = new Set<string>();
  for (const p of nesting.self) paths.add(p);
  // Compiled, helm-lock is its own executable; run from source it is deno, never helm.
  const exe = realPath(Deno.execPath());
  if (exe) paths.add(exe);
  // Only a direct child is the helm its parent started: under a real helm that runs a plugin,
  // the parent is helm. A launcher script must therefore `exec` (see MAX_DEPTH otherwise).
  const startedAsHelm = nesting.spawner !== undefined && nesting.spawner === Deno.ppid;
  if (startedAsHelm && nesting.helm) {
    const path = realPath(nesting.helm);
    if (path) paths.add(path);
  }
  cachedSelf = { nesting, paths, startedAsHelm };
  return cachedSelf;
}

/** Where `name` is found on `PATH`, every match in order (as `exec` would try them). */
export function onPath(name: string, pathVar: string | undefined): string[] {
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
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(candidate);
    } catch {
      continue; // not there
    }
    if (info.isFile && ((info.mode ?? 0o111) & 0o111)) yield candidate;
  }
}

/**
 * The helm executable to run: `$HELM_BIN` when set and not empty (the plugin system sets it
 * to the helm that started us), else `helm` from `PATH` — skipping every candidate that
 * leads back to helm-lock.
 *
 * @param env The environment to read.
 * @param selfPaths Resolved paths that are helm-lock.
 * @returns The path or name to run; `helm` or `$HELM_BIN` as given when nothing is skipped.
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when every candidate is helm-lock.
 */
export function resolveHelm(
  env: Record<string, string | undefined>,
  selfPaths: ReadonlySet<string>,
): string {
  const bin = env["HELM_BIN"] || undefined;
  const isSelf = (path: string) => {
    const real = realPath(path);
    return real !== undefined && selfPaths.has(real);
  };
  const fromBin = bin === undefined ? [] : bin.includes("/") ? [bin] : onPath(bin, env["PATH"]);
  if (bin !== undefined && fromBin.length === 0) return bin; // Not found: let spawning say so.
  for (const candidate of fromBin) {
    // Keep the user's spelling when it is what would run anyway.
    if (!isSelf(candidate)) return candidate === fromBin[0] ? bin! : candidate;
  }
  // PATH is searched for helm only when $HELM_BIN is unset or leads back to helm-lock.
  const fromPath = onPath("helm", env["PATH"]);
  for (const candidate of fromPath) {
    if (!isSelf(candidate)) return candidate;
  }
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
 * other as helm too often: a launcher that is not recognized as helm-lock.
 */
export function nestingEnv(
  helm: string,
  lock?: HeldBy,
): Record<string, string> {
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

/**
 * The ancestor holding the lock on this release, when this helm-lock runs under it (then it
 * must not wait for the lock: its ancestor holds it).
 */
export function heldByAncestor(namespace: string, release: string): HeldBy | undefined {
  const lock = self().nesting.lock;
  return lock && lock.namespace === namespace && lock.release === release ? lock : undefined;
}
