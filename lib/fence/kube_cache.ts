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
 * A fresh cache costs helm about 15 ms (it writes the discovery and the OpenAPI documents it
 * downloads), so a run whose helm exited by itself keeps its directory for the next run against
 * the same server, with its port ({@linkcode KubeCache.keep}; `locked_run.ts` decides when):
 * the next run claims both by renaming the kept directory to a name of its own
 * ({@linkcode KubeCache.claim}), and listens on that port again if it is free. A port is reused
 * only after a run that ended cleanly, every helm it started gone: a run that dies takes its
 * claim with it, so no later run listens on the port of a dead holder's helm. The claimed
 * directory must be ours (owner, mode 0700, not a link), as one made by `makeTempDir` is, and
 * its name carries our user id. Linux only (see `keptName`). Like client-go's own cache, it is
 * shared by every context that names the same server URL.
 *
 * @module
 */

const PREFIX = "helm-lock-kube-cache-";
/** Where a kept directory records the port its helm reached the fence on. */
const PORT_FILE = "helm-lock-port";

/**
 * The kept directory's name for a server: this user's id, then the server's host, port and
 * path as a file name; "" where none is kept. Only on Linux: elsewhere (BSD sockets) listening
 * on `127.0.0.1` and a port may succeed while another program listens on all addresses there.
 */
function keptName(server: string): string {
  if (Deno.build.os !== "linux") return "";
  let url: URL;
  let uid: number | null;
  try {
    url = new URL(server);
    uid = Deno.uid();
  } catch {
    return "";
  }
  if (uid === null) return "";
  const where = `${url.host}${url.pathname}`.replace(/[^A-Za-z0-9.-]/g, "_");
  return `${PREFIX}kept-${uid}-${where}`;
}

/** The temp directories to try, in order: `$TMPDIR`, then `/tmp` (not on Windows). */
function roots(): string[] {
  const tmp = Deno.env.get("TMPDIR");
  const all = [tmp, Deno.build.os === "windows" ? undefined : "/tmp"];
  return [...new Set(all.filter((d): d is string => d !== undefined && d !== ""))];
}

/** A run's cache directory, made at once. */
export class KubeCache {
  readonly path: string;
  #done: Promise<void> | undefined;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Claims the directory a clean run against `server` kept, if there is one and it is ours.
   *
   * @param server The API server's URL (the real one, not the fence's).
   * @returns The cache and the port its helm used, or `undefined`.
   */
  static claim(server: string): { cache: KubeCache; port: number } | undefined {
    const name = keptName(server);
    // Only in the temp directory runs make theirs in (`$TMPDIR` when set): not another's.
    const dir = roots()[0];
    if (!name || !dir) return undefined;
    const path = `${dir}/${PREFIX}${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    try {
      Deno.renameSync(`${dir}/${name}`, path);
    } catch {
      return undefined; // None kept (or not ours to move: the temp directory's sticky bit).
    }
    const cache = new KubeCache(path);
    try {
      const info = Deno.lstatSync(path);
      const port = Number(Deno.readTextFileSync(`${path}/${PORT_FILE}`).trim());
      if (
        info.isDirectory && !info.isSymlink && info.uid === Deno.uid() &&
        info.mode !== null && (info.mode & 0o077) === 0 && Number.isInteger(port) &&
        port > 0 && port < 65536
      ) {
        return { cache, port };
      }
    } catch {
      // Unreadable: not one of ours.
    }
    cache.remove();
    return undefined;
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

  /** Removes the directory and what helm put in it (once, or kept; never fails). */
  remove(): Promise<void> {
    return this.#done ??= this.#removeNow();
  }

  /**
   * Keeps the directory for the next run against `server`, recording `port`; removes it when
   * it cannot be kept (another run kept one first). Call it only once every helm that used
   * the directory has exited and the fence no longer listens on `port`. Once, like
   * {@linkcode KubeCache.remove}; never fails.
   */
  keep(server: string, port: number): Promise<void> {
    return this.#done ??= (async () => {
      const name = keptName(server);
      try {
        // Where the next run claims: the first temp directory, not a fallback one.
        const dir = this.path.slice(0, this.path.lastIndexOf("/"));
        if (!name || dir !== roots()[0]) throw new Error("not kept");
        await Deno.writeTextFile(`${this.path}/${PORT_FILE}`, `${port}\n`);
        await Deno.rename(this.path, `${dir}/${name}`);
      } catch {
        await this.#removeNow();
      }
    })();
  }

  #removeNow(): Promise<void> {
    return Deno.remove(this.path, { recursive: true }).catch(() => {});
  }
}
