import assert from "node:assert/strict";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import {
  markFailed,
  readRelease,
  type ReleaseRecord,
  type ReleaseRecordsApi,
  storageDriver,
} from "../../lib/helm/storage.ts";
import { helmRecordData, helmRecordJson } from "../support/release_records.ts";

// The shape Helm 4 writes (no "deleted"); Helm 3 adds `"deleted":""` before "description".
const RELEASE_JSON = '{"name":"web","info":{"first_deployed":"2026-11-25T18:42:38Z",' +
  '"last_deployed":"2026-11-25T18:42:38Z","description":"Preparing upgrade",' +
  '"status":"pending-upgrade","notes":"say \\"status\\":\\"pending-upgrade\\""},' +
  '"config":{"status":"pending-upgrade","big":9007199254740993},"manifest":"","version":2,' +
  '"namespace":"prod"}';

const UNLOCKED = "Release unlocked by helm-lock from stale 'pending-upgrade' state";

/** {@linkcode RELEASE_JSON} unlocked: only info.status and info.description changed. */
const RELEASE_JSON_FAILED = RELEASE_JSON
  .replace('"description":"Preparing upgrade"', `"description":"${UNLOCKED}"`)
  .replace('"status":"pending-upgrade","notes"', '"status":"failed","notes"');

Deno.test("storageDriver() knows helm's spellings of the secret and configmap drivers", () => {
  for (const v of [undefined, "", "secret", "secrets"]) assert.equal(storageDriver(v), "secret");
  for (const v of ["configmap", "configmaps"]) assert.equal(storageDriver(v), "configmap");
  for (const v of ["sql", "memory", "Secret", "other"]) assert.equal(storageDriver(v), undefined);
});

/** An in-memory {@linkcode ReleaseRecordsApi} that checks resourceVersion as the API does. */
function memoryRecords(records: ReleaseRecord[]) {
  const byName = new Map(records.map((r) => [r.name, { ...r, resourceVersion: "1" }]));
  const api: ReleaseRecordsApi & { byName: typeof byName } = {
    byName,
    list: (selector) => {
      assert.equal(selector, "name=web,owner=helm");
      return Promise.resolve([...byName.values()].map(({ release: _, ...meta }) => meta));
    },
    read: (name) => Promise.resolve(byName.get(name)),
    replace: (record) => {
      const old = byName.get(record.name);
      if (old?.resourceVersion !== record.resourceVersion) {
        return Promise.reject(Object.assign(new Error("Conflict"), { code: 409 }));
      }
      byName.set(record.name, {
        ...record,
        resourceVersion: String(Number(old?.resourceVersion) + 1),
      });
      return Promise.resolve();
    },
  };
  return api;
}

/** Revision `revision` of release "web", its `release` data `data` (else a small JSON's). */
async function record(revision: number, status: string, data?: string): Promise<ReleaseRecord> {
  const json = `{"name":"web","info":{"status":"${status}"},"version":${revision}}`;
  return {
    name: `sh.helm.release.v1.web.v${revision}`,
    labels: { name: "web", owner: "helm", status, version: String(revision) },
    release: data ?? await helmRecordData(json),
  };
}

/** The release JSON of revision 2 after {@linkcode markFailed} unlocked it from `data`. */
async function unlocked(data: string): Promise<string> {
  const api = memoryRecords([await record(2, "pending-upgrade", data)]);
  await markFailed(api, "web", 2, "pending-upgrade");
  const after = api.byName.get("sh.helm.release.v1.web.v2")!.release;
  assert.match(after, /^H4sI/); // base64 of the gzip magic, as in helm's records
  return await helmRecordJson(after);
}

Deno.test("markFailed() changes info.status and info.description only", async () => {
  const out = await unlocked(await helmRecordData(RELEASE_JSON));
  assert.equal(out, RELEASE_JSON_FAILED);
  // The values' own "status" and a number beyond 2^53 stay as they were.
  assert.match(out, /"config":\{"status":"pending-upgrade","big":9007199254740993\}/);
});

Deno.test("markFailed() adds a description when the release has none", async () => {
  const json = '{"info":{"status":"pending-upgrade"},"version":2}';
  assert.equal(
    await unlocked(await helmRecordData(json)),
    `{"info":{"description":"${UNLOCKED}","status":"failed"},"version":2}`,
  );
});

Deno.test("markFailed() refuses a release JSON without info.status and writes nothing", async () => {
  for (const json of ['{"name":"web"}', '{"info":{"description":"x"}}', '{"info":"x"}']) {
    const api = memoryRecords([await record(2, "pending-upgrade", await helmRecordData(json))]);
    await assert.rejects(
      markFailed(api, "web", 2, "pending-upgrade"),
      (e: unknown) => e instanceof HelmLockError && e.code === ExitCode.RecoveryFailed,
    );
    assert.equal(api.byName.get("sh.helm.release.v1.web.v2")!.resourceVersion, "1");
  }
});

Deno.test("markFailed() reads gzip and plain JSON records and writes gzip, as helm does", async () => {
  // helm's decodeRelease also takes base64 of plain JSON (records of old helm versions).
  const plain = new TextEncoder().encode(RELEASE_JSON).toBase64();
  assert.equal(await unlocked(plain), RELEASE_JSON_FAILED);
});

Deno.test("readRelease() reads revision and status from the records' labels, oldest first", async () => {
  const api = memoryRecords([
    await record(10, "pending-upgrade"),
    await record(2, "superseded"),
    await record(9, "deployed"),
  ]);
  // No helm to fall back to: what is read comes from the records.
  const opts = { records: api, env: { HELM_BIN: "/nonexistent/helm" } };
  assert.deepEqual(await readRelease("web", [], opts), {
    found: true,
    current: { revision: 10, status: "pending-upgrade" },
    history: [
      { revision: 2, status: "superseded" },
      { revision: 9, status: "deployed" },
      { revision: 10, status: "pending-upgrade" },
    ],
  });
  // A record without a revision number: helm is asked instead.
  api.byName.get("sh.helm.release.v1.web.v2")!.labels.version = "two";
  await assert.rejects(
    readRelease("web", [], opts),
    (e: unknown) => e instanceof HelmLockError && e.code === ExitCode.HelmNotFound,
  );
});

Deno.test("markFailed() sets the label and the JSON status, guarded by resourceVersion", async () => {
  const api = memoryRecords([await record(1, "deployed"), await record(2, "pending-upgrade")]);
  await markFailed(api, "web", 2, "pending-upgrade");
  const after = api.byName.get("sh.helm.release.v1.web.v2")!;
  assert.equal(after.labels.status, "failed");
  assert.match(after.labels.modifiedAt ?? "", /^\d+$/);
  assert.equal(
    await helmRecordJson(after.release),
    `{"name":"web","info":{"description":"Release unlocked by helm-lock from stale ` +
      `'pending-upgrade' state","status":"failed"},"version":2}`,
  );

  const isRecoveryError = (re: RegExp) => (e: unknown) =>
    e instanceof HelmLockError && e.code === ExitCode.RecoveryFailed && re.test(e.message);
  // No longer pending: nothing written.
  await assert.rejects(
    markFailed(api, "web", 2, "pending-upgrade"),
    isRecoveryError(
      /^Cannot mark revision 2 of release "web" failed: expected it pending-upgrade, found failed$/,
    ),
  );
  await assert.rejects(
    markFailed(api, "web", 7, "pending-upgrade"),
    isRecoveryError(/expected its record sh\.helm\.release\.v1\.web\.v7, found none$/),
  );
  // Written by someone else between read and replace.
  const racing = memoryRecords([await record(3, "pending-rollback")]);
  const read = racing.read;
  racing.read = async (name) => {
    const r = await read(name);
    racing.byName.set(name, { ...r!, resourceVersion: "5" });
    return r;
  };
  await assert.rejects(
    markFailed(racing, "web", 3, "pending-rollback"),
    isRecoveryError(/found it changed by another writer$/),
  );
  assert.equal(racing.byName.get("sh.helm.release.v1.web.v3")!.labels.status, "pending-rollback");
});

Deno.test("markFailed() maps a refused or failed API request to exit codes", async () => {
  const api = memoryRecords([await record(2, "pending-upgrade")]);
  for (const [code, exit] of [[403, ExitCode.Forbidden], [500, ExitCode.RecoveryFailed]]) {
    const refusing = {
      ...api,
      replace: () => Promise.reject(Object.assign(new Error("nope"), { code })),
    };
    await assert.rejects(
      markFailed(refusing, "web", 2, "pending-upgrade"),
      (e: unknown) =>
        e instanceof HelmLockError && e.code === exit &&
        e.message === `Cannot mark revision 2 of release "web" failed: expected the API ` +
            `server to accept the request, found status ${code}`,
    );
  }
  // A timeout carries a legacy numeric code (23) that is no HTTP status.
  const silent = {
    ...api,
    replace: () => Promise.reject(new DOMException("no answer within 10 s", "TimeoutError")),
  };
  await assert.rejects(
    markFailed(silent, "web", 2, "pending-upgrade"),
    (e: unknown) =>
      e instanceof HelmLockError && e.code === ExitCode.RecoveryFailed &&
      e.message.endsWith("found no answer (no answer within 10 s)"),
  );
});
