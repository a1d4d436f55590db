/**
 * A client-go cache directory (`KUBECACHEDIR`) of helm's own for one fenced run, removed once
 * helm is done. client-go keys its discovery and HTTP caches by the server's host and port,
 * and a pass-through listens on a new port each run: in the user's `~/.kube/cache` every run
 * would leave about 1.5 MB that no later run can hit (1.7 GB was seen after a thousand runs).
 *
 * It lives in the temp directory (`$TMPDIR`, else `/tmp`), the one place helm-lock may write
 * (the launcher's `--allow-write`); where that is not granted, helm keeps the user's cache. A
 * helm-lock killed before it removes the directory leaves it to the temp directory's cleaning.
 * @module
 */

/** A run's cache directory, made at once. */
export class KubeCache {
  #removed: Promise<void> | undefined;

  private constructor(readonly path: string) {}

  /** Makes the directory; `{ off: reason }` when no temp directory may be written. */
  static make(): KubeCache | { off: string } {
    let why = "no temp directory";
    const tmp = Deno.env.get("TMPDIR");
    for (const dir of new Set([tmp, Deno.build.os === "windows" ? undefined : "/tmp"])) {
      if (!dir) continue;
      try {
        return new KubeCache(Deno.makeTempDirSync({ dir, prefix: "helm-lock-kube-cache-" }));
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
