/**
 * A commit's source tree in a temp directory (`git archive | tar -x`, no shell), for tests
 * and benches that run another build of helm-lock beside this one.
 *
 * @module
 */

/**
 * Writes the tree of `ref` of the repository at `repo` into a new temp directory.
 *
 * @returns The directory (the caller removes it).
 * @throws {Error} when `git archive` or `tar -x` fails (naming `ref`).
 */
export async function checkOut(repo: string, ref: string, prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  const git = new Deno.Command("git", {
    args: ["-C", repo, "archive", "--format=tar", ref],
    stdout: "piped",
  }).spawn();
  const tar = new Deno.Command("tar", { args: ["-x", "-C", dir], stdin: "piped" }).spawn();
  await git.stdout.pipeTo(tar.stdin);
  if (!(await git.status).success || !(await tar.status).success) {
    await Deno.remove(dir, { recursive: true });
    throw new Error(`cannot check out ${ref} of ${repo} (git archive | tar -x failed)`);
  }
  return dir;
}
