/**
 * The watchdog (lib/helm/watchdog.ts) with real processes, started as the run path starts it
 * (`guardHelm()`, then helm through helmSpawn): helm-lock SIGKILLed means helm gets SIGTERM at
 * once; a normal end signals nothing.
 * `/bin/sleep` stands in for helm.
 */
import assert from "node:assert/strict";
import { lines } from "../support/lines.ts";
import { childPids } from "../support/cli.ts";

const SCRIPT = new URL("../support/guarded_helm.ts", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean, ms: number): Promise<number> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > ms) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return performance.now() - start;
}

function startGuarded(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", SCRIPT, ...args],
    env: { HELM_BIN: "/bin/sleep" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = lines(child.stdout)[Symbol.asyncIterator]();
  const stderr = new Response(child.stderr).text();
  return { child, out, stderr };
}

/** The line the watchdog writes when it stops `helm`. */
function said(helm: number): RegExp {
  return new RegExp(`helm-lock is gone: stopping helm \\(pid ${helm}\\) with SIGTERM`);
}

Deno.test("guardHelm(): helm gets SIGTERM at once when helm-lock is SIGKILLed", async () => {
  const { child, out, stderr } = startGuarded(["30"]);
  const { helm } = JSON.parse((await out.next()).value);
  const tree = await childPids(child.pid);
  assert.equal(tree.length, 2, "helm and the watchdog");
  const watchdog = tree.find((p) => p !== helm)!;
  child.kill("SIGKILL");
  await child.status;
  // helm sleeps 30 s: gone well before that, it was stopped (the line below says by whom).
  // No tighter bound: on a loaded machine the watchdog's start alone can take seconds.
  await until("helm gone", () => !alive(helm), 20_000);
  await until("watchdog gone", () => tree.every((p) => !alive(p)), 5_000);
  await child.stdin.close().catch(() => {});
  assert.match(await stderr, said(helm));
  assert.equal(alive(watchdog), false);
});

Deno.test("guardHelm(): signals nothing and ends when helm-lock ends normally", async () => {
  const { child, out, stderr } = startGuarded(["0.2"]);
  const { helm } = JSON.parse((await out.next()).value);
  const tree = await childPids(child.pid);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("go\n"));
  await writer.close();
  assert.equal((await child.status).code, 0);
  await until("watchdog gone", () => tree.every((p) => !alive(p)), 5_000);
  assert.equal(alive(helm), false);
  assert.doesNotMatch(await stderr, said(helm));
  assert.doesNotMatch(await stderr, /kill|stopping/);
});

Deno.test("startWatchdog() from source at a path with a space and non-ASCII letters still guards", async () => {
  const dir = await Deno.makeTempDir({ prefix: "helm-lock wächter " });
  try {
    const copy = `${dir}/watchdog.ts`;
    await Deno.copyFile(new URL("../../lib/helm/watchdog.ts", import.meta.url), copy);
    // A process that starts the watchdog from the copy, hands it a sleep, and exits without
    // closing it (as when helm-lock is SIGKILLed: the watchdog's input ends).
    const script =
      `import { startWatchdog } from ${JSON.stringify(new URL(`file://${copy}`).href)};\n` +
      `const sleep = new Deno.Command("/bin/sleep", { args: ["30"] }).spawn();\n` +
      `startWatchdog()!.watch(sleep.pid, sleep.status);\n` +
      `console.log(sleep.pid);\n` +
      `await new Promise((r) => setTimeout(r, 500));\n` +
      `Deno.exit(0);\n`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    const pid = Number(new TextDecoder().decode(out.stdout).trim());
    assert.ok(pid > 0, stderr);
    await until("the sleep stopped by the watchdog", () => !alive(pid), 10_000);
    assert.match(stderr, /helm-lock is gone: stopping helm \(pid \d+\) with SIGTERM/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
