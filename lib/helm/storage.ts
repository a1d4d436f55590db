/**
 * helm's own release records, read and edited without spawning helm: the `secret` (default)
 * and `configmap` storage drivers ($HELM_DRIVER). Other drivers (`sql`, `memory`) are not
 * readable here; callers fall back to `helm history` and cannot unlock.
 *
 * The record format, checked against the real records of Helm 3.17.2 and 4.1.4 (the same in
 * both): one object per revision named `sh.helm.release.v1.<release>.v<revision>` (a Secret of
 * type `helm.sh/release.v1`, or a ConfigMap), labelled `owner=helm`, `name=<release>`,
 * `status=<status>`, `version=<revision>` and `modifiedAt=<unix seconds>`, its `release` data
 * being base64(gzip(release JSON)) (Helm 3 labels a record it has not updated yet `createdAt`
 * instead of `modifiedAt`). A Secret's data is base64 once more on the wire (as all
 * Secret data); a ConfigMap's is not. helm writes the `status` label and the JSON's
 * `info.status` together, so the labels alone give every revision's state (the list may be
 * metadata-only where the transport supports it).
 *
 * The Kubernetes calls go through {@linkcode ReleaseRecordsApi}, a three-method interface, so
 * unit tests can put records in memory; {@linkcode kubeRecords} binds it to helm-lock's own
 * API client.
 *
 * @module
 */

import type { KubeClient } from "../kube/rest.ts";
import { ExitCode, HelmLockError } from "../errors.ts";

/** The status of one revision, as helm writes it. */
export type RecordStatus = string;

/** A helm storage driver helm-lock reads and edits itself. */
export type StorageDriver = "secret" | "configmap";

/**
 * The driver helm uses for a `$HELM_DRIVER` value, when helm-lock can read it: helm's own
 * spellings (`secret`, `secrets` or empty; `configmap`, `configmaps`). `undefined` for
 * `memory`, `sql` and anything else (helm decides what those mean).
 */
export function storageDriver(helmDriver: string | undefined): StorageDriver | undefined {
  switch (helmDriver ?? "") {
    case "":
    case "secret":
    case "secrets":
      return "secret";
    case "configmap":
    case "configmaps":
      return "configmap";
    default:
      return undefined;
  }
}

/** A release record's metadata. */
export interface RecordMeta {
  /** The object's name, `sh.helm.release.v1.<release>.v<revision>`. */
  name: string;
  labels: Record<string, string>;
  /** The object's version, for an update guarded against concurrent writers. */
  resourceVersion?: string;
}

/** A release record with helm's encoded release: base64(gzip(JSON)), as the driver stores it. */
export interface ReleaseRecord extends RecordMeta {
  release: string;
}

/**
 * The Kubernetes calls on one namespace's records of one driver. Implementations hide the
 * driver's wire encoding: `release` is always helm's string (a Secret's extra base64 layer
 * removed). Errors are thrown as they come; an update that lost to a concurrent writer (409)
 * or a missing object (404) may be told by an error with `code` 409 or 404.
 */
export interface ReleaseRecordsApi {
  /** Every record whose labels match the selector; only metadata is needed. */
  list(labelSelector: string): Promise<RecordMeta[]>;
  /** One record by name, `undefined` when there is none. */
  read(name: string): Promise<ReleaseRecord | undefined>;
  /** Replaces a record, only if its `resourceVersion` is still the current one. */
  replace(record: ReleaseRecord): Promise<void>;
}

/** One revision as the records' labels tell it. */
export interface RecordRevision {
  revision: number;
  status: RecordStatus;
}

/** The name of a revision's record, the same for both drivers. */
export function recordName(release: string, revision: number): string {
  return `sh.helm.release.v1.${release}.v${revision}`;
}

/**
 * A release's revisions from its records' labels, oldest first: what `helm history` reads,
 * without spawning helm. An empty list when there is no record.
 *
 * @throws whatever {@linkcode ReleaseRecordsApi.list} throws, or `TypeError` for a record
 *   whose `version` label is not a revision number.
 */
export async function readRevisions(
  api: ReleaseRecordsApi,
  release: string,
): Promise<RecordRevision[]> {
  // helm's own query (`name=<release>,owner=helm`), so the same records count.
  const records = await api.list(`name=${release},owner=helm`);
  return records.map((r): RecordRevision => {
    const version = r.labels.version ?? "";
    if (!/^[0-9]+$/.test(version)) {
      throw new TypeError(
        `Expected a revision number in ${r.name}'s label "version": found "${version}"`,
      );
    }
    return { revision: Number(version), status: r.labels.status ?? "unknown" };
  }).sort((a, b) => a.revision - b.revision);
}

/**
 * Marks a stale pending revision `failed` in helm's storage, as Flux's helm-controller
 * unlocks a release: the `status` label and the release JSON's `info.status` (with an
 * `info.description` saying why), so the next `helm upgrade` treats the revision as a failed
 * one and proceeds from the last deployed revision. Nothing else in the record changes: the
 * JSON is edited in place, byte for byte elsewhere (values may hold numbers no JavaScript
 * number keeps exactly). The write is guarded by the record's `resourceVersion`: if helm (or
 * anyone) wrote it since it was read, nothing is written.
 *
 * @param api The records of the release's namespace and driver.
 * @param release The release name.
 * @param revision The pending revision.
 * @param expected The status the revision must still have, e.g. `pending-upgrade`.
 * @throws {HelmLockError} {@linkcode ExitCode.RecoveryFailed} when the record is gone, no
 *   longer in `expected` state, unreadable, was changed concurrently, or the API server
 *   failed; {@linkcode ExitCode.Forbidden} when it refused (401, 403).
 */
export async function markFailed(
  api: ReleaseRecordsApi,
  release: string,
  revision: number,
  expected: RecordStatus,
): Promise<void> {
  const name = recordName(release, revision);
  const what = `mark revision ${revision} of release "${release}" failed`;
  let record: ReleaseRecord | undefined;
  try {
    record = await api.read(name);
  } catch (err) {
    throw apiFailure(what, err);
  }
  if (record === undefined) {
    throw new HelmLockError(
      ExitCode.RecoveryFailed,
      `Cannot ${what}: expected its record ${name}, found none`,
    );
  }
  const labelled = record.labels.status;
  if (labelled !== expected) {
    throw new HelmLockError(
      ExitCode.RecoveryFailed,
      `Cannot ${what}: expected it ${expected}, found ${labelled ?? "no status label"}`,
    );
  }
  const json = await decodeRelease(record.release);
  const edited = setInfoStatus(
    json,
    "failed",
    `Release unlocked by helm-lock from stale '${expected}' state`,
  );
  const labels = {
    ...record.labels,
    status: "failed",
    modifiedAt: String(Math.floor(Date.now() / 1000)),
  };
  try {
    await api.replace({ ...record, labels, release: await encodeRelease(edited) });
  } catch (err) {
    if (errorCode(err) === 409 || errorCode(err) === 404) {
      throw new HelmLockError(
        ExitCode.RecoveryFailed,
        `Cannot ${what}: expected its record ${name} unchanged since it was read, found it ` +
          `changed by another writer`,
        { cause: err },
      );
    }
    throw apiFailure(what, err);
  }
}

/** An API error as a {@linkcode HelmLockError} (401/403: forbidden; anything else: recovery). */
function apiFailure(what: string, err: unknown): HelmLockError {
  if (err instanceof HelmLockError) return err;
  const code = errorCode(err);
  const detail = (err instanceof Error ? err.message : String(err)).split("\n")[0];
  return new HelmLockError(
    code === 401 || code === 403 ? ExitCode.Forbidden : ExitCode.RecoveryFailed,
    `Cannot ${what}: expected the API server to accept the request, found ` +
      (code === undefined ? `no answer (${detail})` : `status ${code}`),
    { cause: err },
  );
}

function errorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

const GZIP_MAGIC = [0x1f, 0x8b, 0x08];

/** helm's `decodeRelease`: base64, then gunzip when it is gzip (else plain JSON). */
export async function decodeRelease(data: string): Promise<string> {
  const bytes = fromBase64(data);
  const gzipped = bytes.length > 3 && GZIP_MAGIC.every((b, i) => bytes[i] === b);
  if (!gzipped) return new TextDecoder().decode(bytes);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

/** helm's `encodeRelease`: gzip, then base64. */
export async function encodeRelease(json: string): Promise<string> {
  const stream = new Blob([json]).stream().pipeThrough(new CompressionStream("gzip"));
  return toBase64(new Uint8Array(await new Response(stream).arrayBuffer()));
}

export function fromBase64(data: string): Uint8Array<ArrayBuffer> {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function toBase64(bytes: Uint8Array): string {
  const chunks: string[] = [];
  for (let i = 0; i < bytes.length; i += 0x8000) {
    chunks.push(String.fromCharCode(...bytes.subarray(i, i + 0x8000)));
  }
  return btoa(chunks.join(""));
}

/**
 * Sets the release JSON's `info.status` and `info.description`, leaving every other byte as
 * it was.
 *
 * @throws {HelmLockError} {@linkcode ExitCode.RecoveryFailed} when the JSON has no
 *   `info.status` string.
 */
export function setInfoStatus(json: string, status: string, description: string): string {
  const info = members(json, 0).find((m) => m.key === "info");
  const fail = (found: string) =>
    new HelmLockError(
      ExitCode.RecoveryFailed,
      `Cannot edit a helm release record: expected a release JSON with "info.status", found ${found}`,
    );
  if (info === undefined || json[info.start] !== "{") throw fail('no "info" object');
  const fields = members(json, info.start);
  const statusAt = fields.find((m) => m.key === "status");
  if (statusAt === undefined || json[statusAt.start] !== '"') throw fail("no status string");
  const descAt = fields.find((m) => m.key === "description");
  const edits: Array<{ start: number; end: number; text: string }> = [
    { start: statusAt.start, end: statusAt.end, text: JSON.stringify(status) },
  ];
  if (descAt !== undefined) {
    edits.push({ start: descAt.start, end: descAt.end, text: JSON.stringify(description) });
  } else {
    // Insert before the status key (`"status":` begins after the previous comma or brace).
    const keyStart = json.lastIndexOf('"status"', statusAt.start);
    edits.push({
      start: keyStart,
      end: keyStart,
      text: `"description":${JSON.stringify(description)},`,
    });
  }
  edits.sort((a, b) => b.start - a.start);
  let out = json;
  for (const e of edits) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

interface Member {
  key: string;
  /** Where the value starts and ends (exclusive). */
  start: number;
  end: number;
}

/** The members of the JSON object starting at `at` (no validation beyond what it needs). */
function members(json: string, at: number): Member[] {
  let i = skipWs(json, at);
  if (json[i] !== "{") throw new SyntaxError(`Expected a JSON object at ${i}`);
  i = skipWs(json, i + 1);
  const out: Member[] = [];
  if (json[i] === "}") return out;
  for (;;) {
    const keyEnd = skipString(json, i);
    const key = JSON.parse(json.slice(i, keyEnd)) as string;
    i = skipWs(json, keyEnd);
    if (json[i] !== ":") throw new SyntaxError(`Expected ":" at ${i}`);
    const start = skipWs(json, i + 1);
    const end = skipValue(json, start);
    out.push({ key, start, end });
    i = skipWs(json, end);
    if (json[i] === "}") return out;
    if (json[i] !== ",") throw new SyntaxError(`Expected "," or "}" at ${i}`);
    i = skipWs(json, i + 1);
  }
}

function skipWs(s: string, i: number): number {
  while (i < s.length && " \t\r\n".includes(s[i]!)) i++;
  return i;
}

function skipString(s: string, i: number): number {
  if (s[i] !== '"') throw new SyntaxError(`Expected a string at ${i}`);
  for (i++; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === '"') return i + 1;
  }
  throw new SyntaxError("Unterminated string");
}

function skipValue(s: string, i: number): number {
  const c = s[i];
  if (c === '"') return skipString(s, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    for (; i < s.length; i++) {
      const d = s[i];
      if (d === '"') i = skipString(s, i) - 1;
      else if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    throw new SyntaxError("Unterminated object or array");
  }
  while (i < s.length && !",}] \t\r\n".includes(s[i]!)) i++;
  return i;
}

/** A Secret or ConfigMap as far as this module reads it. */
interface StoredObject {
  metadata?: { name?: string; labels?: Record<string, string>; resourceVersion?: string };
  data?: Record<string, string>;
}

/**
 * Asks for a PartialObjectMetadataList: the records' metadata without their data (a release
 * record holds the whole chart, up to about 1 MiB each).
 */
const METADATA_ONLY =
  "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

/**
 * {@linkcode ReleaseRecordsApi} on helm-lock's API client (`lib/kube/rest.ts`), the
 * connection the lock already uses.
 *
 * @param client The API server helm uses.
 * @param namespace The release namespace.
 * @param driver Which objects hold the records.
 */
export function kubeRecords(
  client: KubeClient,
  namespace: string,
  driver: StorageDriver,
): ReleaseRecordsApi {
  const kind = driver === "secret" ? "secrets" : "configmaps";
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/${kind}`;
  const path = (name: string) => `${base}/${encodeURIComponent(name)}`;
  const notFound = (err: unknown) => errorCode(err) === 404;
  // The objects as read, so a replace keeps what this module does not know of (annotations,
  // owner references, fields newer helm versions may add).
  const seen = new Map<string, StoredObject>();
  // Secret data is base64 on the wire, over helm's own base64.
  const fromWire = (data: string) =>
    driver === "secret" ? new TextDecoder().decode(fromBase64(data)) : data;
  const toWire = (release: string) =>
    driver === "secret" ? toBase64(new TextEncoder().encode(release)) : release;
  return {
    async list(labelSelector) {
      const list = await client.request<{ items?: StoredObject[] | null }>("GET", base, {
        query: { labelSelector },
        accept: METADATA_ONLY,
      });
      // A PartialObjectMetadataList of no record has `items: null`.
      return (list.items ?? []).map((o) => meta(o.metadata));
    },
    async read(name) {
      try {
        const o = await client.request<StoredObject>("GET", path(name));
        seen.set(name, o);
        return { ...meta(o.metadata), release: fromWire(o.data?.release ?? "") };
      } catch (err) {
        if (notFound(err)) return undefined;
        throw err;
      }
    },
    async replace(record) {
      const old = seen.get(record.name) ?? {};
      await client.request("PUT", path(record.name), {
        body: {
          apiVersion: "v1",
          kind: driver === "secret" ? "Secret" : "ConfigMap",
          ...old,
          metadata: { ...old.metadata, ...object(record) },
          data: { ...old.data, release: toWire(record.release) },
        },
      });
    },
  };
}

function meta(
  m: { name?: string; labels?: Record<string, string>; resourceVersion?: string } | undefined,
): RecordMeta {
  const out: RecordMeta = { name: m?.name ?? "", labels: { ...m?.labels } };
  if (m?.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  return out;
}

function object(record: ReleaseRecord) {
  return {
    name: record.name,
    labels: record.labels,
    ...(record.resourceVersion !== undefined ? { resourceVersion: record.resourceVersion } : {}),
  };
}
