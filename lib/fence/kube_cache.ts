/**
 * A fenced helm's own client-go cache directory (`KUBECACHEDIR`; why: docs/design.md "The fence"),
 * in the temp directory, the one place the launcher's `--allow-write` grants. A helm-lock killed
 * before it removes the directory leaves it to the temp directory's cleaning.
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
