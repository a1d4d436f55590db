/**
 * A musl-only root file system for the Alpine install test: Debian's `musl` and
 * `busybox-static` packages unpacked into a directory (no glibc anywhere), cached under the
 * test cache, and a way to run a command inside it with `chroot` (in its own mount and PID
 * namespace, with /proc mounted, as a container has it).
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "../../scripts/_util.ts";
import { debianRoot, debianUnavailable } from "./debian_packages.ts";
import { exec, type Output, which } from "./plugin_release.ts";

/** The Debian packages the root file system is made of. */
const PACKAGES = ["musl", "busybox-static"];
/** Bump to rebuild every cached root file system. */
const LAYOUT = 1;

/** Why the chroot test cannot run here, or `undefined` when it can. */
export async function chrootUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return `chroot test needs Linux, this is ${Deno.build.os}`;
  if (Deno.uid() !== 0) return "chroot needs root (CAP_SYS_CHROOT); run the tests as root";
  for (const tool of ["unshare", "chroot"]) {
    if (await which(tool) === undefined) return `${tool} is not installed`;
  }
  return await debianUnavailable();
}

/**
 * The cached root file system, built on first use: `/bin/busybox` with every applet linked in
 * `/bin`, musl's loader in `/lib`, and empty `/tmp`, `/proc`, `/root`.
 */
export async function muslRootfs(): Promise<string> {
  return await debianRoot(`musl-rootfs-${Deno.build.arch}-${LAYOUT}`, PACKAGES, async (root) => {
    const applets = await exec(join(root, "bin", "busybox"), ["--list"]);
    for (const applet of applets.stdout.split("\n").filter((a) => /^[\w.[-]+$/.test(a))) {
      const link = join(root, "bin", applet);
      if (!await exists(link)) await Deno.symlink("busybox", link);
    }
    for (const sub of ["tmp", "proc", "root", "dev"]) await Deno.mkdir(join(root, sub));
    await Deno.chmod(join(root, "tmp"), 0o1777);
  });
}

/** Paths under `root` that belong to glibc (its loader or libc.so.6). */
export async function glibcFiles(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (/^ld-linux|^libc\.so\.6$/.test(entry.name)) found.push(path);
      if (entry.isDirectory && !entry.isSymlink) await walk(path);
    }
  };
  await walk(root);
  return found;
}

/**
 * Runs `argv` inside `root` with `chroot`, in new mount and PID namespaces with /proc
 * mounted (a container's view), with exactly `env` as the environment.
 */
export async function inChroot(
  root: string,
  argv: string[],
  env: Record<string, string>,
): Promise<Output> {
  const chroot = await which("chroot") ?? "/usr/sbin/chroot";
  return await exec(await which("unshare") ?? "unshare", [
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    `--mount-proc=${join(root, "proc")}`,
    chroot,
    root,
    ...argv,
  ], { env, clearEnv: true });
}
