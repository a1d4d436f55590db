/**
 * Debian packages unpacked into the test cache without installing them: `apt-get download`
 * and `dpkg-deb -x`, once per machine, as any user. Where the machine has no package lists
 * yet (a fresh one), apt reads them into a directory of the run's own first, so neither root
 * nor the machine's own lists are needed. The Alpine test's musl root file system is made
 * this way, and so is the `shellcheck` the packaging tests run where none is installed.
 *
 * @module
 */
import { join } from "node:path";
import { cacheDir } from "../controlplane/binaries.ts";
import { exists } from "../../scripts/_util.ts";
import { exec, which } from "./plugin_release.ts";

/** Why Debian packages cannot be unpacked here, or `undefined` when they can. */
export async function debianUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return `Debian packages need Linux, this is ${Deno.build.os}`;
  for (const tool of ["apt-get", "dpkg-deb"]) {
    if (await which(tool) === undefined) return `${tool} is not installed`;
  }
  return undefined;
}

async function aptDownload(dir: string, packages: string[], options: string[] = []) {
  return await exec("apt-get", [...options, "download", "-q", ...packages], { cwd: dir });
}

/**
 * apt options that keep its package lists and archive cache in `dir` (made here), with no
 * lock on the machine's: `apt-get update` with them needs no root and leaves the machine's
 * lists alone.
 */
async function privateLists(dir: string): Promise<string[]> {
  const lists = join(dir, "lists");
  const cache = join(dir, "cache");
  await Deno.mkdir(join(lists, "partial"), { recursive: true });
  await Deno.mkdir(join(cache, "archives", "partial"), { recursive: true });
  return [
    "-o",
    `Dir::State::Lists=${lists}`,
    "-o",
    `Dir::Cache=${cache}`,
    "-o",
    "Debug::NoLocking=1",
  ];
}

/**
 * The directory `name` in the test cache holding `packages` unpacked, made on first use:
 * downloaded, extracted into one root, passed to `finish`, then moved into place (so a
 * directory that exists is complete; concurrent first uses both build, one wins).
 */
export async function debianRoot(
  name: string,
  packages: string[],
  finish: (root: string) => Promise<void> = async () => {},
): Promise<string> {
  const dir = join(cacheDir(), name);
  if (await exists(join(dir, ".complete"))) return dir;
  await Deno.mkdir(cacheDir(), { recursive: true });
  const work = await Deno.makeTempDir({ dir: cacheDir(), prefix: `${name}-` });
  try {
    const debs = join(work, "debs");
    await Deno.mkdir(debs, { mode: 0o777 });
    await Deno.chmod(debs, 0o777); // apt's _apt user downloads into it
    let got = await aptDownload(debs, packages);
    if (got.code !== 0) {
      // A fresh machine has no package lists yet: read them into `work`, removed below.
      const options = await privateLists(join(work, "apt"));
      const update = await exec("apt-get", [...options, "update", "-qq"]);
      if (update.code !== 0) throw new Error(`apt-get update failed:\n${update.stderr}`);
      got = await aptDownload(debs, packages, options);
    }
    if (got.code !== 0) {
      throw new Error(`apt-get download ${packages.join(" ")} failed:\n${got.stderr}`);
    }
    const root = join(work, "root");
    await Deno.mkdir(root);
    for await (const entry of Deno.readDir(debs)) {
      const x = await exec("dpkg-deb", ["-x", join(debs, entry.name), root]);
      if (x.code !== 0) throw new Error(`dpkg-deb -x ${entry.name} failed:\n${x.stderr}`);
    }
    await finish(root);
    await Deno.writeTextFile(join(root, ".complete"), packages.join(" ") + "\n");
    try {
      await Deno.rename(root, dir);
    } catch (e) {
      if (!await exists(join(dir, ".complete"))) throw e; // else another run was first
    }
    return dir;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** A command to run: its path and what to add to the environment. */
export interface Tool {
  cmd: string;
  env: Record<string, string>;
}

/**
 * `shellcheck`: the one on PATH, else Debian's (with the two libraries it links, so it runs
 * whatever the machine has installed). Throws when neither can be had.
 */
export async function shellcheck(): Promise<Tool> {
  const installed = await which("shellcheck");
  if (installed) return { cmd: installed, env: {} };
  const unavailable = await debianUnavailable();
  if (unavailable !== undefined) {
    throw new Error(`Cannot find shellcheck on PATH, nor fetch Debian's: ${unavailable}`);
  }
  const root = await debianRoot(`shellcheck-${Deno.build.arch}-1`, [
    "shellcheck",
    "libgmp10",
    "libffi8",
  ]);
  const libs = [];
  for await (const e of Deno.readDir(join(root, "usr", "lib"))) {
    if (e.isDirectory && e.name.includes("-linux-")) libs.push(join(root, "usr", "lib", e.name));
  }
  return { cmd: join(root, "usr", "bin", "shellcheck"), env: { LD_LIBRARY_PATH: libs.join(":") } };
}
