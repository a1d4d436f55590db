/**
 * Temporary directories for tests.
 *
 * @module
 */

/**
 * Runs `fn` in a fresh temporary directory named `<prefix>…` and removes it afterwards, also
 * when `fn` throws: what a test writes never outlives it.
 */
export async function withTempDir<T>(
  prefix: string,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A temporary `#!/bin/sh` script with `body` (a fake helm, say), executable; its path. */
export async function shellScript(body: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: "-helm" });
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}`);
  await Deno.chmod(path, 0o755);
  return path;
}
