/**
 * A client-go cache directory (`KUBECACHEDIR`) of helm's own for one fenced run, removed once
 * helm is done. client-go keys its discovery and HTTP caches by the server's host and port,
 * and a pass-through listens on a new port each run: in the user's `~/.kube/cache` every run
 * would leave about 1.5 MB that no later run can hit (1.7 GB was seen after a thousand runs).
 * A directory of the run's own holds the same download and is gone with the run.
 *
 * It lives in the temp directory (`$TMPDIR`, else `/tmp`), the one place helm-lock may write
 * (the launcher's `--allow-write`). Where that is not granted, helm keeps the user's cache, as
 * before. A helm-lock killed before it removes the directory leaves it to the temp directory's
 * own cleaning.
 *
 * @module
 */

const PREFIX = "helm-lock-kube-cache-";

/** The temp directories to try, in order: `$TMPDIR`, then `/tmp` (not on Windows). */
function roots(): string[] {
  const tmp = Deno.env.get("TMPDIR");
  const all = [tmp, Deno.build.os === "windows" ? undefined : "/tmp"];
  return [...new Set(all.filter((d): d is string => d !== undefined && d !== ""))];
}

/** A run's cache directory, made at once. */
export class KubeCache {
  readonly path: string;
  #removed: Promise<void> | undefined;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Makes the directory.
   *
   * @returns The cache, or `{ off: reason }` when no temp directory may be written.
   */
  static make(): KubeCache | { off: string } {
    let why = "no temp directory";
    for (const dir of roots()) {
      try {
        return new KubeCache(Deno.makeTempDirSync({ dir, prefix: PREFIX }));
      } catch (error) {
        why = `${dir}: ${error instanceof Error ? error.message : String(error)}`;
      }
    }
    return { off: why };
  }

  /** Removes the directory and what helm put in it (once; never fails). */
  remove(): Promise<void> {
    return this.#removed ??= Deno.remove(this.path, { recursive: true }).catch(() => {});
  }
}
