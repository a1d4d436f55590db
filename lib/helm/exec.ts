/**
 * The one place helm-lock starts helm (DESIGN §4): always an argv array, never a shell, so values
 * such as `--set a=b,c=d` reach helm byte for byte.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import type { RunLock } from "../lock/run_lock.ts";
import { redactCommandLine, redactText, secretValues } from "../redact.ts";
import { firstOnPath, type HeldBy, nestingEnv, resolveHelm, self } from "./nesting.ts";
import type { Interrupts } from "./signals.ts";
import { startWatchdog, type Watchdog } from "./watchdog.ts";

/** The watchdog of the helm processes started while a lock is held. */
let active: Watchdog | undefined;

/**
 * From now until disposed, every helm started here is stopped with SIGTERM if helm-lock dies
 * (SIGKILL, the OOM killer). Dispose it once every helm started under it has exited.
 */
export function guardHelm(): AsyncDisposable {
  const started = active ??= startWatchdog();
  return {
    async [Symbol.asyncDispose]() {
      if (!started || active !== started) return;
      active = undefined;
      await started.close();
    },
  };
}

/**
 * The helm to run ({@linkcode resolveHelm}), checked to be an executable file before any request,
 * so that a job neither waits for nor holds a lock for a helm that cannot run (issue 27).
 *
 * @param env The environment to read. @default {Deno.env.toObject()}
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) naming the helm and why.
 */
export function findHelm(env: Record<string, string | undefined> = Deno.env.toObject()): string {
  const bin = resolveHelm(env, self().paths);
  // Execute bits and a ":"-separated PATH are POSIX's: on Windows, spawning finds out.
  if (Deno.build.os === "windows") return bin;
  const path = bin.includes("/") ? bin : firstOnPath(bin, env.PATH);
  const problem = path === undefined ? "it is not on PATH" : cannotRun(path);
  if (problem) throw cannotStart(bin, problem, ExitCode.HelmNotFound);
  return bin;
}

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
  if (uid === 0) return 0o111;
  if (uid === info.uid) return 0o100;
  const mode = info.mode ?? 0o111;
  // A member of the file's group gets the group's bit alone, anyone else the others'.
  if (((mode >> 3) & 1) === (mode & 1)) return 0o011;
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
  /** 128 + n when helm was ended by signal n. */
  code: number;
  stdout: string;
  stderr: string;
  /** helm's `Error:` lines (else all it printed) as one line, the call's secrets hidden. */
  said: string;
  failure: ExitCode;
}

/** Options for {@linkcode helmCapture}. */
export interface HelmCaptureOptions {
  /** Added to (or overriding) the inherited environment; a `HELM_BIN` here chooses the helm. */
  env?: Record<string, string>;
  /** Aborting sends helm SIGTERM; the call then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** The lock helm runs under, for its nesting marker. */
  lock?: HeldBy;
}

/**
 * Runs helm for helm-lock's own calls, its output captured and stdin closed so that it never
 * waits for input; the inherited environment carries `HELM_DRIVER`, `KUBECONFIG`, ... to helm.
 *
 * @returns helm's exit code and output; a non-zero code is not an error here.
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when helm cannot be started.
 * @throws {unknown} `opts.signal.reason` when the signal aborts the call.
 */
export async function helmCapture(
  args: string[],
  opts: HelmCaptureOptions = {},
): Promise<HelmResult> {
  const bin = resolveHelm({ ...Deno.env.toObject(), ...opts.env }, self().paths);
  const env = { ...opts.env, ...nestingEnv(bin, opts.lock) };
  opts.signal?.throwIfAborted();
  const out = await spawn(bin, args, {
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env,
    ...(opts.signal ? { signal: opts.signal } : {}),
  }).output();
  opts.signal?.throwIfAborted();
  const decoder = new TextDecoder();
  const stderr = decoder.decode(out.stderr);
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const errors = lines.filter((l) => l.startsWith("Error:"));
  const said = (errors.length > 0 ? errors : lines).map((l) => l.replace(/^Error:\s*/, ""))
    .join("; ");
  // Helm 3 says "Kubernetes cluster unreachable", Helm 4 "kubernetes cluster unreachable",
  // and both for rejected credentials too: authentication words count first.
  const failure = /\bforbidden\b|\bunauthorized\b|provide credentials/i.test(stderr)
    ? ExitCode.Forbidden
    : /cluster unreachable|connection refused|no such host|i\/o timeout|network is unreachable/i
        .test(stderr)
    ? ExitCode.Unreachable
    : ExitCode.RecoveryFailed;
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr,
    said: said === "" ? "no error message" : redactText(said, secretValues(args)),
    failure,
  };
}

/**
 * Starts helm with the user's stdio. `status` never rejects; `kill` does nothing once helm has
 * exited.
 *
 * @param env Added to (or overriding) the inherited environment (the fence's).
 * @param opts `lock`: the lock helm runs under, for its nesting marker (default: none but an
 *   ancestor's); `bin`: the helm to run (default: {@linkcode resolveHelm}'s).
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when helm cannot be started.
 */
export function helmSpawn(
  args: string[],
  env?: Record<string, string>,
  opts: { lock?: HeldBy; bin?: string } = {},
): { pid: number; status: Promise<Deno.CommandStatus>; kill(signal: Deno.Signal): void } {
  const { lock, bin = resolveHelm(Deno.env.toObject(), self().paths) } = opts;
  const child = spawn(bin, args, {
    env: { ...env, ...nestingEnv(bin, lock) },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  });
  return {
    pid: child.pid,
    status: child.status,
    kill(signal: Deno.Signal): void {
      try {
        child.kill(signal);
      } catch (error) {
        // Deno never signals a child it has reaped: it throws a TypeError ("Child process has
        // already terminated") instead. Anything else is a real failure.
        if (!(error instanceof TypeError)) throw error;
      }
    },
  };
}

/** Starts helm, guarded while a lock is held ({@linkcode guardHelm}). */
function spawn(bin: string, args: string[], options: Deno.CommandOptions): Deno.ChildProcess {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(bin, { ...options, args }).spawn();
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "it was not found"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission was denied"
      : undefined;
    const code = why ? ExitCode.HelmNotFound : ExitCode.Internal;
    throw cannotStart(bin, why ?? String(error), code, error);
  }
  active?.watch(child.pid, child.status);
  return child;
}

function cannotStart(bin: string, why: string, code: ExitCode, cause?: unknown): HelmLockError {
  return new HelmLockError(
    code,
    `Cannot run helm as "${bin}": ${why}; install helm or set $HELM_BIN to its path`,
    cause === undefined ? undefined : { cause },
  );
}

/** The signal count at which helm is killed instead of asked to stop. */
const KILL_AT_SIGNAL = 3;

/**
 * Runs the user's helm under the held lock (DESIGN §4) and returns the exit code to end with:
 * helm's own, or 128 + signal.
 *
 * @throws {HelmLockError} {@linkcode ExitCode.LockLost} when the lock was lost while helm ran
 *   (helm was stopped); {@linkcode ExitCode.HelmNotFound} when helm cannot start.
 */
export async function runHelm(
  bin: string,
  cmd: { helmArgs: string[]; release: string },
  lock: RunLock,
  env: Record<string, string>,
  signals: Interrupts,
): Promise<number> {
  const { report, held: { lost } } = lock;
  if (signals.first) {
    report.info(`${signals.first} received: helm did not run`);
    return signals.exitCode();
  }
  lost.throwIfAborted();
  report.info(`running helm ${redactCommandLine(cmd.helmArgs)}`);
  const helm = helmSpawn(cmd.helmArgs, env, { bin, lock: lock.heldBy });
  signals.onSignal = (sig, count) => {
    if (count < KILL_AT_SIGNAL) {
      // Helm ≥ 3.7 cancels and marks the release failed, not pending. CI runners often deliver
      // the same SIGTERM twice: killing helm for that would leave the very pending release
      // helm-lock exists to prevent.
      report.info(
        count === 1
          ? `${sig} received: forwarding it to helm and waiting for helm to exit`
          : `${sig} received again: still waiting for helm; a third signal kills it`,
      );
      helm.kill(sig);
    } else {
      report.info(`${sig} received ${count} times: killing helm (the next run recovers it)`);
      helm.kill("SIGKILL");
    }
  };
  const onLost = () => {
    report.info(`lost ${cmd.release}'s lock while helm ran: stopping helm with SIGTERM`);
    helm.kill("SIGTERM");
  };
  lost.addEventListener("abort", onLost, { once: true });
  const status = await helm.status;
  lost.removeEventListener("abort", onLost);
  if (lost.aborted) {
    const reason = lost.reason;
    throw reason instanceof HelmLockError ? reason : new HelmLockError(
      ExitCode.LockLost,
      `Lost the lock of release "${cmd.release}" while helm ran: helm was stopped`,
      { cause: reason },
    );
  }
  if (signals.first) return signals.exitCode();
  report.debug(`helm exited with code ${status.code}`);
  return status.code;
}

/**
 * Runs helm with no lock and returns its exit code (128 + n when signal n ended it). SIGINT and
 * SIGTERM are forwarded: a CI runner's SIGTERM to us must reach helm, or helm would outlive us.
 *
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when helm cannot be started.
 */
export async function runHelmDirectly(helmArgs: string[]): Promise<number> {
  const helm = helmSpawn(helmArgs, undefined, { bin: findHelm() });
  const handlers = (["SIGINT", "SIGTERM"] as const).map((sig) =>
    [sig, () => helm.kill(sig)] as const
  );
  for (const [sig, handler] of handlers) Deno.addSignalListener(sig, handler);
  try {
    return (await helm.status).code;
  } finally {
    for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
  }
}
