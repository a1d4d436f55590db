/**
 * `recover()` (lib/helm/recover.ts) called as a locked run calls it, the held lock's parts it
 * reads made here: its lines and Events are kept for the tests to read.
 *
 * @module
 */

import { recover } from "../../lib/helm/recover.ts";
import { listenForSignals } from "../../lib/helm/signals.ts";
import type { KubeClient } from "../../lib/kube/rest.ts";
import type { RunLock } from "../../lib/lock/run_lock.ts";

/** The user's command as recovery reads it; `globalArgs` default to `-n <namespace>`. */
export interface RecoveryCase {
  command: string;
  release: string;
  install: boolean;
  globalArgs?: string[];
}

/** What a recovery said: its lines, and its Events as `<reason>: <note>`. */
export interface Recovered {
  lines: string[];
  events: string[];
}

/**
 * Runs `recover()` for `cmd` in `namespace`, helm-lock's own API calls through `client`
 * (closed at the end, as a run's lock closes it) and helm's with `env` added to the
 * environment (a `HELM_BIN` there chooses the helm).
 *
 * @throws {HelmLockError} what `recover()` throws.
 */
export async function recoverAs(
  cmd: RecoveryCase,
  namespace: string,
  client: KubeClient,
  env: Record<string, string>,
): Promise<Recovered> {
  const said: Recovered = { lines: [], events: [] };
  const done = () => Promise.resolve();
  const lock: RunLock = {
    held: {
      lost: new AbortController().signal,
      validUntil: () => Infinity,
      release: done,
      recordDeploy: done,
      forgetRelease: done,
    },
    client,
    heldBy: { namespace, release: cmd.release, identity: "test-holder" },
    report: {
      info: (line) => said.lines.push(line),
      debug: () => {},
      event: (reason, note) => said.events.push(`${reason}: ${note}`),
    },
    close: () => Promise.resolve(client.close()),
  };
  using signals = listenForSignals(() => {});
  try {
    const globalArgs = cmd.globalArgs ?? ["-n", namespace];
    await recover({ ...cmd, globalArgs, dryRun: false, recover: true }, lock, env, signals);
    return said;
  } finally {
    await lock.close();
  }
}
