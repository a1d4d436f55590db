/**
 * File helpers shared by the build scripts and the test tooling.
 *
 * @module
 */

/** Whether `path` exists (a symbolic link counts, even when it points nowhere). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The hex SHA-256 of `data`. */
export async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The hex SHA-256 of a file. */
export async function sha256File(path: string): Promise<string> {
  return sha256Hex(await Deno.readFile(path));
}
