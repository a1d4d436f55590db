import assert from "node:assert/strict";
import { ExitCode } from "../../lib/errors.ts";
import { HelmLockError } from "../../lib/errors.ts";
import { helmCapture } from "../../lib/helm/exec.ts";
import {
  readRelease,
  type ReleaseRevision,
  type ReleaseState,
  type ReleaseStatus,
} from "../../lib/helm/storage.ts";
import { unusedClient } from "../support/fake_api.ts";
import { recoverAs, type Recovered } from "../support/recovery.ts";
import { shellScript } from "../support/temp.ts";

/** A found release whose revisions have these statuses, revision 1 first. */
function release(...statuses: ReleaseStatus[]): ReleaseState {
  const history: ReleaseRevision[] = statuses.map((status, i) => ({ revision: i + 1, status }));
  const current = history[history.length - 1];
  return current === undefined ? { found: false, history } : { found: true, current, history };
}

/**
 * A helm that prints `$FAKE_OUT` and `$FAKE_ERR` and exits with `$FAKE_CODE`; with
 * `$FAKE_HISTORY` set, `helm history` prints that instead.
 */
const fakeHelm = shellScript(
  '[ "$1" = history ] && [ -n "$FAKE_HISTORY" ] && { printf %s "$FAKE_HISTORY"; exit; }\n' +
    'printf %s "$FAKE_OUT"; printf %s "$FAKE_ERR" >&2; exit "${FAKE_CODE:-0}"\n',
);

async function fake(out: { stdout?: string; stderr?: string; code?: number }) {
  return {
    env: {
      HELM_BIN: await fakeHelm,
      FAKE_OUT: out.stdout ?? "",
      FAKE_ERR: out.stderr ?? "",
      FAKE_CODE: String(out.code ?? 0),
    },
  };
}

type Command = { command: string; install: boolean };

/**
 * What recover() says for `cmd` of release "web" in namespace "prod" when helm history shows
 * `state` (the client has no records: as with the sql driver), helm's rollback and uninstall
 * succeeding.
 */
async function recoverFrom(state: ReleaseState, cmd: Command): Promise<Recovered> {
  const env = { HELM_BIN: await fakeHelm, FAKE_HISTORY: JSON.stringify(state.history) };
  return await recoverAs({ ...cmd, release: "web" }, "prod", unusedClient, env);
}

/** What recover() does: proceed, roll back to a revision, uninstall, or refuse (exit 5). */
async function outcome(
  state: ReleaseState,
  cmd: Command,
): Promise<"proceed" | "uninstall" | "error" | number> {
  let said: Recovered;
  try {
    said = await recoverFrom(state, cmd);
  } catch (e) {
    // Refused as planned, not for a failure to read the release.
    const refused = /no good revision to roll back to|is stuck in state/;
    if (
      e instanceof HelmLockError && e.code === ExitCode.RecoveryFailed && refused.test(e.message)
    ) {
      return "error";
    }
    throw e;
  }
  const last = said.lines[said.lines.length - 1] ?? "";
  const rolledBack = / to revision (\d+)$/.exec(last);
  if (rolledBack && last.startsWith("rolled back ")) return Number(rolledBack[1]);
  if (last.startsWith("uninstalled the stale ")) return "uninstall";
  // Only the state found said, and nothing done.
  assert.equal(said.lines.length, 1, JSON.stringify(said));
  assert.deepEqual(said.events, []);
  return "proceed";
}

const upgrade = { command: "upgrade", install: false };
const upgradeInstall = { command: "upgrade", install: true };
const install = { command: "install", install: false };

const TABLE: {
  name: string;
  state: ReleaseState;
  cmd: { command: string; install: boolean };
  want: "proceed" | "uninstall" | "error" | number;
}[] = [
  {
    name: "not found, upgrade",
    state: { found: false, history: [] },
    cmd: upgrade,
    want: "proceed",
  },
  {
    name: "not found, install",
    state: { found: false, history: [] },
    cmd: install,
    want: "proceed",
  },
  {
    name: "deployed, upgrade",
    state: release("superseded", "deployed"),
    cmd: upgrade,
    want: "proceed",
  },
  { name: "deployed, install", state: release("deployed"), cmd: install, want: "proceed" },
  {
    name: "pending-upgrade after deployed",
    state: release("superseded", "deployed", "pending-upgrade"),
    cmd: upgrade,
    want: 2,
  },
  {
    name: "pending-upgrade skips a failed revision",
    state: release("deployed", "failed", "pending-upgrade"),
    cmd: upgrade,
    want: 1,
  },
  {
    name: "pending-upgrade after an old stuck one and a rollback",
    // What helm leaves behind after a killed upgrade and `helm rollback 1`: revision 2 stays
    // pending-upgrade forever; revision 3 is the rollback.
    state: release("superseded", "pending-upgrade", "superseded", "pending-upgrade"),
    cmd: upgrade,
    want: 3,
  },
  {
    name: "pending-rollback",
    state: release("superseded", "deployed", "pending-rollback"),
    cmd: upgradeInstall,
    want: 2,
  },
  {
    name: "pending-upgrade prefers the deployed revision to a newer superseded one",
    // A failed rollback marks the failed revision it started from superseded.
    state: release("deployed", "superseded", "failed", "pending-upgrade"),
    cmd: upgrade,
    want: 1,
  },
  {
    name: "pending-upgrade with only superseded before it",
    state: release("superseded", "superseded", "uninstalled", "pending-upgrade"),
    cmd: upgrade,
    want: 2,
  },
  {
    name: "failed with a deployed revision before it, upgrade",
    state: release("superseded", "deployed", "failed"),
    cmd: upgrade,
    want: "proceed",
  },
  {
    name: "failed with a deployed revision before it, upgrade --install",
    state: release("deployed", "failed"),
    cmd: upgradeInstall,
    want: "proceed",
  },
  {
    name: "failed with a deployed revision before it, install",
    state: release("deployed", "failed"),
    cmd: install,
    want: "proceed",
  },
  {
    name: "failed rollback after a stuck upgrade, upgrade",
    // What helm leaves when its rollback of a pending upgrade fails (helm/helm#13437).
    state: release("deployed", "superseded", "failed"),
    cmd: upgrade,
    want: "proceed",
  },
  {
    name: "failed first install, upgrade",
    // helm upgrades a failed first install itself (from the failed revision).
    state: release("failed"),
    cmd: upgrade,
    want: "proceed",
  },
  {
    name: "failed first install, upgrade --install",
    state: release("failed"),
    cmd: upgradeInstall,
    want: "uninstall",
  },
  {
    name: "failed first install, install",
    state: release("failed"),
    cmd: install,
    want: "uninstall",
  },
  {
    name: "pending-install, upgrade",
    state: release("pending-install"),
    cmd: upgrade,
    want: "error",
  },
  {
    name: "pending-install, upgrade --install",
    state: release("pending-install"),
    cmd: upgradeInstall,
    want: "uninstall",
  },
  {
    name: "pending-install, install",
    state: release("pending-install"),
    cmd: install,
    want: "uninstall",
  },
  {
    name: "pending-install after an uninstall --keep-history is not rolled back",
    state: release("superseded", "uninstalled", "pending-install"),
    cmd: upgradeInstall,
    want: "uninstall",
  },
  {
    name: "pending-upgrade with only failed before it, upgrade --install",
    state: release("failed", "pending-upgrade"),
    cmd: upgradeInstall,
    want: "uninstall",
  },
  {
    name: "pending-upgrade with only failed before it, upgrade",
    state: release("failed", "pending-upgrade"),
    cmd: upgrade,
    want: "error",
  },
  {
    name: "uninstalling, upgrade",
    state: release("deployed", "uninstalling"),
    cmd: upgrade,
    want: "error",
  },
  {
    name: "uninstalling, upgrade --install",
    state: release("uninstalling"),
    cmd: upgradeInstall,
    want: "error",
  },
  {
    name: "uninstalled with history, upgrade --install",
    state: release("superseded", "uninstalled"),
    cmd: upgradeInstall,
    want: "proceed",
  },
  { name: "unknown status", state: release("deployed", "unknown"), cmd: upgrade, want: "proceed" },
];

for (const c of TABLE) {
  Deno.test(`recover() for ${c.name}: ${c.want}`, async () => {
    assert.equal(await outcome(c.state, c.cmd), c.want);
  });
}

Deno.test("recover() leaves the release alone for commands other than install and upgrade", async () => {
  for (const command of ["rollback", "uninstall", "status", "template"]) {
    const said = await recoverFrom(release("pending-upgrade"), { command, install: false });
    assert.deepEqual(said, { lines: [], events: [] }, command);
  }
});

Deno.test("recover() names the state, release, namespace and --install in its error", async () => {
  await assert.rejects(recoverFrom(release("pending-install"), upgrade), {
    name: "HelmLockError",
    code: ExitCode.RecoveryFailed,
    message: 'Cannot upgrade release "web" in namespace "prod": it is pending-install at ' +
      "revision 1 with no good revision to roll back to; add --install to let helm-lock " +
      "uninstall the stale release and install it again",
  });
});

Deno.test("recover() tells how to finish a stuck uninstall", async () => {
  await assert.rejects(
    recoverFrom(release("uninstalling"), upgrade),
    (e: unknown) =>
      e instanceof HelmLockError && e.code === ExitCode.RecoveryFailed &&
      /^Release "web" in namespace "prod" is stuck in state "uninstalling" at revision 1: finish it with "helm uninstall web"/
        .test(e.message),
  );
});

Deno.test("recover() says what was found and the revision it went back to", async () => {
  const reason = 'release "web" in namespace "prod" is pending-upgrade at revision 2; ' +
    "the last good revision is 1";
  const done = 'rolled back release "web" in namespace "prod" to revision 1';
  assert.deepEqual(await recoverFrom(release("deployed", "pending-upgrade"), upgrade), {
    lines: [reason, done],
    events: [`Recovered: ${reason}; ${done}`],
  });
});

Deno.test("recover() says a failed release does not block the command", async () => {
  assert.deepEqual(await recoverFrom(release("deployed", "failed"), upgrade), {
    lines: [
      'release "web" in namespace "prod" is failed at revision 2, which does not block ' +
      "helm upgrade",
    ],
    events: [],
  });
});

// Printed by `helm history r -o json` of Helm 3.17.2 and 4.1.4 alike (description shortened).
const HISTORY_JSON =
  '[{"revision":1,"updated":"2026-11-25T14:18:33.081048655Z","status":"deployed","chart":"slow-0.1.0","app_version":"","description":"Install complete"},' +
  '{"revision":2,"updated":"2026-11-25T14:18:33.166458411Z","status":"pending-upgrade","chart":"slow-0.1.0","app_version":"","description":"Preparing upgrade"}]';

Deno.test("readRelease() reads helm history's JSON", async () => {
  const history = [
    {
      revision: 1,
      status: "deployed",
      updated: "2026-11-25T14:18:33.081048655Z",
      description: "Install complete",
    },
    {
      revision: 2,
      status: "pending-upgrade",
      updated: "2026-11-25T14:18:33.166458411Z",
      description: "Preparing upgrade",
    },
  ];
  assert.deepEqual(await readRelease("app", [], await fake({ stdout: HISTORY_JSON })), {
    found: true,
    current: history[1],
    history,
  });
});

Deno.test("readRelease() sorts by revision and maps unknown statuses to unknown", async () => {
  const stdout = '[{"revision":3,"status":"exploded"},{"revision":2,"status":"failed"}]';
  assert.deepEqual((await readRelease("app", [], await fake({ stdout }))).history, [
    { revision: 2, status: "failed" },
    { revision: 3, status: "unknown" },
  ]);
});

Deno.test("readRelease() rejects what is not a revision list", async () => {
  for (
    const [stdout, cause] of [["{}", TypeError], ['[{"revision":"1"}]', TypeError], [
      "not json",
      SyntaxError,
    ]] as const
  ) {
    await assert.rejects(readRelease("app", [], await fake({ stdout })), (e: unknown) => {
      assert.ok(e instanceof HelmLockError);
      assert.equal(e.code, ExitCode.RecoveryFailed);
      assert.equal(
        e.message,
        `Cannot read the state of release "app": expected a JSON list from "helm history -o ` +
          `json", found ${JSON.stringify(stdout)}`,
      );
      assert.ok(e.cause instanceof cause);
      return true;
    });
  }
});

Deno.test("readRelease() finds no release where helm says so", async () => {
  const stderr = "Error: release: not found\n";
  assert.deepEqual(await readRelease("app", [], await fake({ stderr, code: 1 })), {
    found: false,
    history: [],
  });
});

Deno.test("readRelease() maps helm 3 and helm 4 errors to exit codes", async () => {
  const cases: [string, ExitCode][] = [
    [
      'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:1/version": dial tcp 127.0.0.1:1: connect: connection refused',
      ExitCode.Unreachable,
    ],
    [
      'Error: kubernetes cluster unreachable: Get "http://localhost:8080/version": dial tcp 127.0.0.1:8080: connect: connection refused',
      ExitCode.Unreachable,
    ],
    [
      "Error: kubernetes cluster unreachable: the server has asked for the client to provide credentials",
      ExitCode.Forbidden,
    ],
    [
      'Error: query: failed to query with labels: secrets is forbidden: User "nobody" cannot list resource "secrets" in API group "" in the namespace "default"',
      ExitCode.Forbidden,
    ],
    ["Error: something else broke", ExitCode.RecoveryFailed],
  ];
  for (const [stderr, code] of cases) {
    await assert.rejects(
      readRelease("app", [], { ...await fake({ stderr, code: 1 }), namespace: "prod" }),
      (e: unknown) =>
        e instanceof HelmLockError && e.code === code &&
        e.message === `Cannot read the state of release "app" in namespace "prod": "helm ` +
            `history" exited with code 1: ${stderr.slice("Error: ".length)}`,
    );
  }
});

Deno.test("helmCapture() says helm's Error lines on one line without the prefix", async () => {
  const said = async (stderr: string) => (await helmCapture([], await fake({ stderr }))).said;
  assert.equal(
    await said('level=WARN msg="upgrade failed"\nError: UPGRADE FAILED: bad\n'),
    "UPGRADE FAILED: bad",
  );
  assert.equal(await said("line one\n  line two \n"), "line one; line two");
  assert.equal(await said("\n"), "no error message");
});

Deno.test("helmCapture() hides the secrets of the helm call in what helm said (issue 17)", async () => {
  const stderr = 'Error: Get "https://kube:KubePass1@api.example/v1": token Tok3nXYZ rejected\n';
  const res = await helmCapture(
    ["history", "app", "--kube-token", "Tok3nXYZ"],
    await fake({ stderr }),
  );
  assert.equal(res.said, 'Get "https://***@api.example/v1": token *** rejected');
});

/** Sample releases for each row of the README's recovery table, by the row's first cell. */
const README_ROWS: Record<string, ReleaseState[]> = {
  "none, `deployed`, `superseded`, `uninstalled`": [
    { found: false, history: [] },
    release("deployed"),
    release("deployed", "superseded"),
    release("deployed", "uninstalled"),
  ],
  "`failed`, with an earlier good revision": [
    release("deployed", "failed"),
    release("superseded", "deployed", "superseded", "failed"),
  ],
  "`failed`, with no good revision (a failed first install)": [release("failed")],
  "`pending-upgrade`, `pending-rollback`, with an earlier good revision": [
    release("deployed", "pending-upgrade"),
    release("superseded", "deployed", "pending-rollback"),
  ],
  "`pending-install`, or pending with no good revision": [
    release("pending-install"),
    release("failed", "pending-upgrade"),
  ],
  "`uninstalling`": [release("deployed", "uninstalling")],
};

Deno.test("recover() does what the README's recovery table says", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const rows = readme.split("\n").map((l) => l.trim())
    .filter((l) => l.startsWith("|"))
    .map((l) => l.slice(1, -1).split("|").map((c) => c.trim()));
  const header = rows.findIndex((r) => r[0] === "newest revision");
  assert.ok(header >= 0, "the README has no recovery table");
  const table = rows.slice(header + 2, header + 2 + Object.keys(README_ROWS).length);
  assert.deepEqual(table.map((r) => r[0]), Object.keys(README_ROWS));
  const action = (word: string) => word === "exit 5" ? "error" : word;
  const did = async (s: ReleaseState, cmd: Command) => {
    const done = await outcome(s, cmd);
    return typeof done === "number" ? "rollback" : done;
  };
  for (const [state, plain, creating] of table) {
    for (const s of README_ROWS[state!]!) {
      assert.equal(await did(s, upgrade), action(plain!), `${state}, upgrade`);
      for (const cmd of [install, upgradeInstall]) {
        assert.equal(await did(s, cmd), action(creating!), `${state}, ${cmd.command}`);
      }
    }
  }
});
