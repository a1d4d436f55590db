/**
 * helm-lock's own values are checked against what the API server and the lock can take
 * before any request (issue 27): out of bounds is a usage error, exit 2, naming the flag or
 * variable, the bound and the value found.
 */
import assert from "node:assert/strict";
import { parseArgs } from "../../lib/cli/args.ts";
import { connect } from "../../lib/kube/connection.ts";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { join } from "node:path";

function invocation(args: string[], env: Record<string, string> = {}) {
  const parsed = parseArgs(["upgrade", "app", "./chart", ...args], "helm-lock", env);
  assert.equal(parsed.kind, "run");
  return parsed.invocation;
}

function refused(args: string[], env: Record<string, string>, message: string | RegExp): void {
  assert.throws(() => parseArgs(["upgrade", "app", "./chart", ...args], "helm-lock", env), (e) => {
    assert.ok(e instanceof HelmLockError);
    assert.equal(e.code, ExitCode.Usage);
    assert.ok(!e.message.includes("\n"));
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

Deno.test("parseArgs() takes --lock-lease-duration up to 1h and refuses more", () => {
  assert.equal(invocation(["--lock-lease-duration=1h"]).leaseDurationSeconds, 3600);
  assert.equal(invocation(["--lock-lease-duration=59m59.6s"]).leaseDurationSeconds, 3600);
  refused(
    ["--lock-lease-duration=1000000h"],
    {},
    `Cannot use --lock-lease-duration as it must be at most 1h: found "1000000h"`,
  );
  // Just past the cap, and what would overflow the Lease's int32 leaseDurationSeconds.
  refused(["--lock-lease-duration", "1h0.6s"], {}, /at most 1h: found "1h0.6s"/);
  refused(["--lock-lease-duration", `${2 ** 31}s`], {}, /at most 1h: found "2147483648s"/);
  refused(
    [],
    { HELM_LOCK_LEASE_DURATION: "2h" },
    /^Cannot use HELM_LOCK_LEASE_DURATION=2h as it must be at most 1h/,
  );
});

Deno.test("parseArgs() takes --lock-timeout up to 24h and refuses more", () => {
  assert.equal(invocation(["--lock-timeout", "24h"]).lockTimeoutMs, 86_400_000);
  assert.equal(invocation(["--lock-timeout", "0"]).lockTimeoutMs, 0);
  refused(
    ["--lock-timeout=24h0.001s"],
    {},
    `Cannot use --lock-timeout as it must be at most 24h: found "24h0.001s"`,
  );
  // Past the runtime's timers (2^31 - 1 ms), and Go's largest duration.
  refused(["--lock-timeout=600h"], {}, /at most 24h: found "600h"/);
  refused(["--lock-timeout=2562047h"], {}, /at most 24h/);
  refused(
    [],
    { HELM_LOCK_TIMEOUT: "1000h" },
    /^Cannot use HELM_LOCK_TIMEOUT=1000h as it must be at most 24h/,
  );
});

Deno.test("parseArgs() takes --lock-order-key up to 2^53 - 1 and refuses more", () => {
  // Millisecond timestamps (past 2^40) are order keys some pipelines use.
  assert.equal(invocation(["--lock-order-key", String(2 ** 40)]).orderKey, 2 ** 40);
  assert.equal(invocation(["--lock-order-key", "1767225600000"]).orderKey, 1767225600000);
  assert.equal(
    invocation(["--lock-order-key", "9007199254740991"]).orderKey,
    Number.MAX_SAFE_INTEGER,
  );
  refused(
    ["--lock-order-key", "9007199254740992"],
    {},
    `Cannot use --lock-order-key as "9007199254740992" is not a whole number up to ` +
      `9007199254740991: expected a whole number such as $CI_PIPELINE_IID`,
  );
  refused(["--lock-order-key=18446744073709551616"], {}, /not a whole number up to/);
  refused(["--lock-order-key=1e3"], {}, /"1e3" is not a whole number: expected/);
  refused([], { HELM_LOCK_ORDER_KEY: "9".repeat(400) }, /^Cannot use HELM_LOCK_ORDER_KEY=9+ as/);
});

function kubeconfig(namespace?: string): string {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "config");
  Deno.writeTextFileSync(
    path,
    JSON.stringify({
      clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1" } }],
      users: [{ name: "u", user: {} }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u", namespace } }],
      "current-context": "x",
    }),
  );
  return path;
}

Deno.test("connect() refuses a namespace name no namespace can have, naming its source", () => {
  const config = kubeconfig();
  const NO_SA = "/nonexistent";
  for (const ok of ["a", "prod", "team-a-1", "0", "a".repeat(63)]) {
    assert.equal(connect({ kubeconfig: config, namespace: ok }, {}, NO_SA).namespace, ok);
  }
  const cases: Array<[Parameters<typeof connect>[0], Record<string, string>, RegExp]> = [
    [
      { kubeconfig: config, namespace: "Prod" },
      {},
      /^Cannot use namespace "Prod" \(from --namespace\) as it is not a valid namespace name: expected at most 63 lowercase letters/,
    ],
    [{ kubeconfig: config, namespace: "a".repeat(64) }, {}, /"a{64}" \(from --namespace\)/],
    [{ kubeconfig: config, namespace: "-a" }, {}, /"-a"/],
    [{ kubeconfig: config, namespace: "a-" }, {}, /"a-"/],
    [{ kubeconfig: config, namespace: "a.b" }, {}, /"a.b"/],
    [{ kubeconfig: config, namespace: "a\x1b[2J" }, {}, /"a\\u001b\[2J"/],
    [
      { kubeconfig: config },
      { HELM_NAMESPACE: "under_score" },
      /"under_score" \(from HELM_NAMESPACE\)/,
    ],
    [{ kubeconfig: kubeconfig("x/y") }, {}, /"x\/y" \(from the context\)/],
  ];
  for (const [flags, env, message] of cases) {
    assert.throws(() => connect(flags, env, NO_SA), (e) => {
      assert.ok(e instanceof HelmLockError);
      assert.equal(e.code, ExitCode.Usage);
      assert.match(e.message, message);
      return true;
    });
  }
});
