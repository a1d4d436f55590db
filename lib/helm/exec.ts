/**
 * The one place helm-lock starts helm (DESIGN §4). Always an argv array, never a shell, so
 * values such as `--set a=b,c=d` or quoted text with spaces reach helm byte for byte.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import { findKillTools, KillAtEof, type KillTools } from "./kill_at_eof.ts";
import { firstOnPath, type HeldBy, nestingEnv, resolveHelm, self } from "./nesting.ts";
import { Watchdog } from "./watchdog.ts";

/** What stops helm when helm-lock dies. */
export type GuardKind = "xargs" | "process";

interface Guard {
  /** Guards `pid` until `exited` settles. */
  watch(pid: number, exited: Promise<unknown>): void;
  close(): Promise<void>;
}

/** The guard of the helm processes started while a lock is held. */
let active: Guard | undefined;

/**
 * An `xargs` per helm where the system has `xargs` and `kill` (`kill_at_eof.ts`: it starts in
 * a millisecond), else one watchdog process (`watchdog.ts`: a second Deno, about 50 ms of CPU).
 */
function startGuard(kind: GuardKind | undefined): Guard | undefined {
  if (kind === "process" || Deno.build.os === "windows") return processGuard(Watchdog.start());
  // The tools are looked up when the first helm has started, not on the way to starting it.
  let tools: KillTools | undefined | null = null;
  let fallback: Guard | undefined;
  return {
    watch(pid, exited) {
      if (tools === null) tools = findKillTools();
      const watch = tools && KillAtEof.start(tools, pid);
      if (watch) {
        exited.finally(() => watch.stop()).catch(() => {});
        return;
      }
      fallback ??= processGuard(Watchdog.start());
      fallback?.watch(pid, exited);
    },
    close: () => fallback?.close() ?? Promise.resolve(),
  };
}

/** The guard of one watchdog process (`watchdog.ts`), if it could be started. */
function processGuard(dog: Watchdog | undefined): Guard | undefined {
  if (!dog) return undefined;
  return {
    watch(pid, exited) {
      dog.watch(pid);
      exited.finally(() => dog.unwatch(pid)).catch(() => {});
    },
    close: () => dog.close(),
  };
}

/**
 * From now until disposed, every helm started here is stopped with SIGTERM if helm-lock dies
 * (SIGKILL, the OOM killer). Dispose it once every helm started under it has exited.
 *
 * @param kind `xargs` where the tools are found, else `process`. @default {"xargs"}
 */
export function guardHelm(kind?: GuardKind): AsyncDisposable {
  const started = active ??= startGuard(kind);
  return {
    async [Symbol.asyncDispose]() {
      if (!started || active !== started) return;
      active = undefined;
      await started.close();
    },
  };
}

/** Registers a started helm with the guard until `status` settles. */
function guarded(pid: number, status: Promise<unknown>): void {
  active?.watch(pid, status);
}

/**
 * The helm executable to run: `$HELM_BIN` when set and not empty (the plugin system sets it
 * to the helm that started us), else `helm` from `PATH`; a candidate that leads back to
 * helm-lock itself is skipped (`nesting.ts`).
 *
 * @param env The environment to read. @default {Deno.env.toObject()}
 * @returns The path or name of the helm executable.
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when every candidate is helm-lock.
 */
export function helmBin(env?: Record<string, string | undefined>): string {
  return resolveHelm(env ?? Deno.env.toObject(), self().paths);
}

/**
 * {@linkcode helmBin}, checked to be a helm that can start: it exists, is a file (not a
 * directory) and is executable. Called before any request, so that a job neither waits for
 * nor holds a lock for a helm that cannot run (issue 27).
 *
 * @param env The environment to read. @default {Deno.env.toObject()}
 * @returns The path or name of the helm executable, as {@linkcode helmBin} gives it.
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) naming the helm and why it
 * cannot run.
 */
export function findHelm(env: Record<string, string | undefined> = Deno.env.toObject()): string {
  const bin = helmBin(env);
  // Execute bits and a ":"-separated PATH are POSIX's: on Windows, spawning finds out.
  if (Deno.build.os === "windows") return bin;
  const path = bin.includes("/") ? bin : firstOnPath(bin, env.PATH);
  const problem = path === undefined ? "it is not on PATH" : cannotRun(path);
  if (problem) {
    throw new HelmLockError(
      ExitCode.HelmNotFound,
      `Cannot run helm as "${bin}": ${problem}; install helm or set $HELM_BIN to its path`,
    );
  }
  return bin;
}

/** Why the file at `path` cannot be run, if it cannot. */
function cannotRun(path: string): string | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "it does not exist";
    if (error instanceof Deno.errors.PermissionDenied) return "its folder may not be read";
    return String(error);
  }
  if (info.isDirectory) return "it is a directory";
  if (!info.isFile) return "it is not a file";
  return (info.mode ?? 0o111) & executeBits(info) ? undefined : "it is not executable";
}

/** Which execute bits of a file apply to this process: exec's rule (ACLs aside). */
function executeBits(info: Deno.FileInfo): number {
  const uid = Deno.uid();
  if (uid === 0) return 0o111; // root: any
  if (uid === info.uid) return 0o100; // the owner: the owner's alone
  const mode = info.mode ?? 0o111;
  // A member of the file's group gets the group's bit alone, anyone else the others'.
  if (((mode >> 3) & 1) === (mode & 1)) return 0o011; // the same either way
  return inGroup(info.gid) ?? true ? 0o010 : 0o001;
}

/** Whether this process is in group `gid`; `undefined` when that cannot be read (not Linux). */
function inGroup(gid: number | null): boolean | undefined {
  if (gid === null) return undefined;
  if (gid === Deno.gid()) return true;
  try {
    const groups = /^Groups:(.*)$/m.exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
    return groups?.trim().split(/\s+/).includes(String(gid));
  } catch {
    return undefined;
  }
}

/** What a captured helm call printed and how it ended. */
export interface HelmResult {
  /** The exit code; 128 + n when helm was ended by signal n. */
  code: number;
  /** Everything helm printed to stdout, decoded as UTF-8. */
  stdout: string;
  /** Everything helm printed to stderr, decoded as UTF-8. */
  stderr: string;
}

/** Options for {@linkcode helmCapture}. */
export interface HelmCaptureOptions {
  /**
   * Variables added to (or overriding) the inherited environment; a `HELM_BIN` here also
   * chooses the helm to run. @default {{}}
   */
  env?: Record<string, string>;
  /** Aborting sends helm SIGTERM; the call then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** The lock helm runs under, for its nesting marker (`nesting.ts`). */
  lock?: HeldBy;
}

/**
 * Runs helm with its output captured, for helm-lock's own calls (`history`, `rollback`,
 * `uninstall`). stdin is closed so helm can never wait for input. The environment is
 * inherited, which is how `HELM_DRIVER`, `HELM_NAMESPACE`, `KUBECONFIG`, ... reach helm.
 *
 * @param args helm's arguments, without the executable.
 * @param opts Extra environment and an abort signal.
 * @returns helm's exit code and output; a non-zero code is not an error here.
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when helm cannot be started.
 * @throws {unknown} `opts.signal.reason` when the signal aborts the call.
 */
export async function helmCapture(
  args: string[],
  opts: HelmCaptureOptions = {},
): Promise<HelmResult> {
  const bin = helmBin({ ...Deno.env.toObject(), ...opts.env });
  const env = { ...opts.env, ...nestingEnv(bin, opts.lock) };
  opts.signal?.throwIfAborted();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(bin, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env,
      ...(opts.signal ? { signal: opts.signal } : {}),
    }).spawn();
  } catch (error) {
    throw spawnError(bin, error);
  }
  guarded(child.pid, child.status);
  const out = await child.output();
  opts.signal?.throwIfAborted();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** A running helm started by {@linkcode helmSpawn}. */
export interface HelmRun {
  /** helm's process id. */
  readonly pid: number;
  /** Resolves when helm has exited; never rejects. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Sends helm a signal; does nothing once helm has exited. */
  kill(signal: Deno.Signal): void;
}

/**
 * Starts the user's helm command with stdin, stdout and stderr inherited, so helm talks to
 * the terminal or CI log exactly as it would without helm-lock.
 *
 * @param args helm's arguments, verbatim and in order.
 * @param env Variables added to (or overriding) the inherited environment (the fence's).
 * @param opts `lock`: the lock helm runs under, for its nesting marker (default: none but an
 *   ancestor's); `bin`: the helm to run, when the caller resolved it (default: {@linkcode helmBin}).
 * @returns A handle to wait for helm and to forward signals to it.
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when helm cannot be started.
 */
export function helmSpawn(
  args: string[],
  env?: Record<string, string>,
  opts: { lock?: HeldBy; bin?: string } = {},
): HelmRun {
  const { lock, bin = helmBin() } = opts;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(bin, {
      args,
      env: { ...env, ...nestingEnv(bin, lock) },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    throw spawnError(bin, error);
  }
  guarded(child.pid, child.status);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  return {
    pid: child.pid,
    status,
    kill(signal: Deno.Signal): void {
      if (exited) return;
      try {
        child.kill(signal);
      } catch (error) {
        // helm may exit between the check above and the kill; Deno then throws a TypeError
        // ("Child process has already terminated"). Anything else is a real failure.
        if (!(error instanceof TypeError)) throw error;
      }
    },
  };
}

function spawnError(bin: string, error: unknown): HelmLockError {
  const missing = error instanceof Deno.errors.NotFound;
  const denied = error instanceof Deno.errors.PermissionDenied;
  const why = missing ? "it was not found" : denied ? "permission was denied" : String(error);
  return new HelmLockError(
    missing || denied ? ExitCode.HelmNotFound : ExitCode.Internal,
    `Cannot run helm as "${bin}": ${why}; install helm or set $HELM_BIN to its path`,
    { cause: error },
  );
}
