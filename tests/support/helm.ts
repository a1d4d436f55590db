/**
 * Runs the real helm binaries from end-to-end tests (argv arrays, never a shell).
 *
 * @module
 */

import { slowUpgradeArgs } from "./charts.ts";
import { adminKubeconfig, kubeClientFor } from "./cluster.ts";

/** What a finished helm process printed and returned. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bin args...` to completion with `env` added to the environment. */
export async function run(
  bin: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Output> {
  const out = await new Deno.Command(bin, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * The status and revision of a release's last record, as `helm status` reports them, or
 * `undefined` when there is none. Read from the records' labels (`status`, `version`) through
 * the API, as `env.KUBECONFIG` (default: the admin's) sees them: the tests poll this, and a
 * helm process per poll costs a fifth of a CPU second. Storage drivers other than Secrets and
 * ConfigMaps are asked through `helm status`.
 */
export async function releaseStatus(
  bin: string,
  release: string,
  namespace: string,
  env: Record<string, string>,
): Promise<{ status: string; revision: number } | undefined> {
  const driver = (env.HELM_DRIVER ?? "secret").toLowerCase();
  const kind = ["", "secret", "secrets"].includes(driver)
    ? "secrets"
    : ["configmap", "configmaps"].includes(driver)
    ? "configmaps"
    : undefined;
  if (!kind) return await helmStatus(bin, release, namespace, env);
  // A client per call: one kept between tests would show as a leak to Deno's sanitizer.
  const client = kubeClientFor(env.KUBECONFIG ?? adminKubeconfig());
  let list: { items?: { metadata: { labels?: Record<string, string> } }[] | null };
  try {
    list = await client.request("GET", `/api/v1/namespaces/${namespace}/${kind}`, {
      query: { labelSelector: `owner=helm,name=${release}` },
      accept: PARTIAL_LIST,
    });
  } finally {
    client.close();
  }
  let last: { status: string; revision: number } | undefined;
  for (const { metadata: { labels = {} } } of list.items ?? []) {
    const revision = Number(labels.version);
    if (!last || revision > last.revision) last = { status: labels.status ?? "", revision };
  }
  return last;
}

/** Only the records' metadata: their bodies (the whole release, gzipped) are not needed. */
const PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/** `helm status <release> -o json`'s `info.status`, or `undefined` when there is no release. */
async function helmStatus(
  bin: string,
  release: string,
  namespace: string,
  env: Record<string, string>,
): Promise<{ status: string; revision: number } | undefined> {
  const out = await run(bin, ["status", release, "-n", namespace, "-o", "json"], env);
  if (out.code !== 0) {
    if (/not found/.test(out.stderr)) return undefined;
    throw new Error(`helm status ${release} failed: ${out.stderr.trim()}`);
  }
  const json = JSON.parse(out.stdout);
  return { status: json.info.status, revision: json.version };
}

/** Polls until `check()` returns a value other than `undefined`, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Polls the release's status until it is `status`. */
export function waitForStatus(
  bin: string,
  release: string,
  namespace: string,
  env: Record<string, string>,
  status: string,
): Promise<true> {
  return waitFor(`release ${release} to be ${status}`, async () => {
    const s = await releaseStatus(bin, release, namespace, env);
    return s?.status === status ? true : undefined;
  });
}

/**
 * Starts `bin args...` with stdin, stdout and stderr discarded: a helm that a test stops, kills
 * or waits out mid-operation, whose output is not the point.
 */
export function spawnQuiet(
  bin: string,
  args: string[],
  env: Record<string, string>,
): Deno.ChildProcess {
  return new Deno.Command(bin, { args, env, stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
}

/**
 * Starts `helm upgrade --install --wait` of the slow chart and returns once the release is
 * `pending-upgrade` (or `pending-install` for a first install): helm is then mid-operation.
 */
export async function startStuckUpgrade(
  bin: string,
  release: string,
  namespace: string,
  env: Record<string, string>,
  pending: "pending-install" | "pending-upgrade",
): Promise<Deno.ChildProcess> {
  const child = spawnQuiet(bin, [
    ...slowUpgradeArgs(release, namespace, { install: true }),
    "--set",
    `tag=${crypto.randomUUID().slice(0, 6)}`,
  ], env);
  await waitForStatus(bin, release, namespace, env, pending);
  return child;
}

/**
 * Starts `bin args...` (quiet), waits for `moment()`, then SIGKILLs it, also when the wait
 * failed: helm killed at a chosen point mid-operation, as a lost CI runner leaves it.
 */
export async function killAt(
  bin: string,
  args: string[],
  env: Record<string, string>,
  moment: () => Promise<unknown>,
): Promise<void> {
  const child = spawnQuiet(bin, args, env);
  try {
    await moment();
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

/**
 * Starts `helm args...` (release `release`), waits until the release is in `status`, then
 * SIGKILLs helm: a helm killed mid-operation, as a lost CI runner leaves it.
 */
export function killWhen(
  bin: string,
  args: string[],
  env: Record<string, string>,
  release: string,
  namespace: string,
  status: string,
): Promise<void> {
  return killAt(
    bin,
    [...args, "-n", namespace],
    env,
    () => waitForStatus(bin, release, namespace, env, status),
  );
}

/** One revision of `helm history -o json`. */
export interface Revision {
  revision: number;
  status: string;
  updated: string;
}

/**
 * The release's revisions from `helm history -o json`, oldest first: none for a release helm
 * does not know; throws with helm's stderr when helm fails otherwise.
 */
export async function revisions(
  bin: string,
  release: string,
  namespace: string,
  env: Record<string, string>,
): Promise<Revision[]> {
  const out = await run(bin, ["history", release, "-n", namespace, "-o", "json"], env);
  if (out.code !== 0) {
    if (/not found/.test(out.stderr)) return [];
    throw new Error(`helm history ${release} failed: ${out.stderr.trim()}`);
  }
  return JSON.parse(out.stdout);
}

/**
 * {@linkcode revisions} as `<revision>:<status>`, oldest first: one line per revision is what
 * the tests compare, to see what a recovery or a fence left behind.
 */
export async function history(...args: Parameters<typeof revisions>): Promise<string[]> {
  return (await revisions(...args)).map((r) => `${r.revision}:${r.status}`);
}
