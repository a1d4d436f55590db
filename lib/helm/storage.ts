/**
 * The release's state as helm stores it (DESIGN §3), as Helm 3.17.2 and 4.1.4 agree: a record
 * per revision (a Secret or ConfigMap) whose labels `status` and `version` alone tell every
 * revision, its `release` data base64(gzip(release JSON)); else `helm history -o json`. A killed
 * upgrade's revision stays `pending-upgrade` even after a rollback: only the newest counts.
 *
 * @module
 */

import { statusCode } from "../kube/api_error.ts";
import type { KubeClient } from "../kube/rest.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { helmCapture, type HelmCaptureOptions } from "./exec.ts";

/** The statuses helm writes, and `unknown`, which also stands for any status we do not know. */
const STATUSES = [
  "deployed",
  "superseded",
  "failed",
  "uninstalling",
  "uninstalled",
  "pending-install",
  "pending-upgrade",
  "pending-rollback",
  "unknown",
] as const;

/** A revision's status as helm prints it. */
export type ReleaseStatus = typeof STATUSES[number];

/** One entry of `helm history`; `updated` (RFC 3339) and `description` only from helm. */
export interface ReleaseRevision {
  revision: number;
  status: ReleaseStatus;
  updated?: string;
  description?: string;
}

/** A release as found in the cluster. */
export interface ReleaseState {
  found: boolean;
  /** The newest revision: the release's state. */
  current?: ReleaseRevision;
  /** Oldest first. */
  history: ReleaseRevision[];
}

/** Options for {@linkcode readRelease} (and recovery's helm calls). */
export interface ReleaseOptions extends HelmCaptureOptions {
  /** The release namespace, named in messages. */
  namespace?: string;
  /** helm's records, read instead of spawning `helm history`; only they can be unlocked. */
  records?: ReleaseRecordsApi;
}

/**
 * Reads the release from `opts.records`, else (or when reading them fails) with `helm history`
 * and the user's `globalArgs`, so that it sees the cluster, identity and driver the command does.
 *
 * @returns `{found: false, history: []}` when helm has no such release.
 * @throws {HelmLockError} {@linkcode ExitCode.Forbidden} when the API server refused us,
 *   {@linkcode ExitCode.Unreachable} when it cannot be reached, else
 *   {@linkcode ExitCode.RecoveryFailed}; the message includes helm's error.
 */
export async function readRelease(
  release: string,
  globalArgs: string[],
  opts: ReleaseOptions = {},
): Promise<ReleaseState> {
  const where = `release "${release}"` +
    (opts.namespace === undefined ? "" : ` in namespace "${opts.namespace}"`);
  // On an error helm says best what went wrong.
  let history = opts.records && await readRevisions(opts.records, release).catch(() => undefined);
  if (history === undefined) {
    const args = ["history", release, "-o", "json", "--max", "256", ...globalArgs];
    const res = await helmCapture(args, opts);
    if (res.code === 0) {
      try {
        const data: unknown = JSON.parse(res.stdout);
        if (!Array.isArray(data)) throw new TypeError("Expected a JSON array");
        history = data.map(historyEntry).sort((a, b) => a.revision - b.revision);
      } catch (error) {
        throw new HelmLockError(
          ExitCode.RecoveryFailed,
          `Cannot read the state of ${where}: expected a JSON list from "helm history -o json", ` +
            `found ${JSON.stringify(res.stdout.trim().slice(0, 80))}`,
          { cause: error },
        );
      }
    } else if (/\brelease: not found\b/.test(res.stderr)) {
      history = [];
    } else {
      throw new HelmLockError(
        res.failure,
        `Cannot read the state of ${where}: "helm history" exited with code ${res.code}: ` +
          res.said,
      );
    }
  }
  const current = history[history.length - 1];
  return current === undefined ? { found: false, history } : { found: true, current, history };
}

function statusOf(status: unknown): ReleaseStatus {
  return (STATUSES as readonly unknown[]).includes(status) ? status as ReleaseStatus : "unknown";
}

function historyEntry(entry: unknown): ReleaseRevision {
  if (typeof entry !== "object" || entry === null) {
    throw new TypeError(`Expected an object per revision: found ${JSON.stringify(entry)}`);
  }
  const e = entry as Record<string, unknown>;
  if (typeof e.revision !== "number" || !Number.isInteger(e.revision)) {
    throw new TypeError(`Expected an integer revision: found ${JSON.stringify(e.revision)}`);
  }
  const rev: ReleaseRevision = { revision: e.revision, status: statusOf(e.status) };
  if (typeof e.updated === "string") rev.updated = e.updated;
  if (typeof e.description === "string") rev.description = e.description;
  return rev;
}

/** A helm storage driver helm-lock reads and edits itself. */
export type StorageDriver = "secret" | "configmap";

/** The `$HELM_DRIVER` in helm's spellings, if helm-lock can read it (not `memory`, `sql`). */
export function storageDriver(helmDriver = ""): StorageDriver | undefined {
  if (["", "secret", "secrets"].includes(helmDriver)) return "secret";
  return ["configmap", "configmaps"].includes(helmDriver) ? "configmap" : undefined;
}

/** A release record's metadata. */
export interface RecordMeta {
  name: string;
  labels: Record<string, string>;
  resourceVersion?: string;
}

/** A release record with helm's encoded release: base64(gzip(JSON)). */
export interface ReleaseRecord extends RecordMeta {
  release: string;
}

/**
 * The Kubernetes calls on one namespace's records of one driver. `release` is always helm's
 * string (a Secret's extra base64 layer removed). A lost race or a missing object may throw
 * with `code` 409 or 404.
 */
export interface ReleaseRecordsApi {
  list(labelSelector: string): Promise<RecordMeta[]>;
  /** `undefined` when there is none. */
  read(name: string): Promise<ReleaseRecord | undefined>;
  /** Only if its `resourceVersion` is still the current one. */
  replace(record: ReleaseRecord): Promise<void>;
}

async function readRevisions(api: ReleaseRecordsApi, release: string): Promise<ReleaseRevision[]> {
  // helm's own query, so the same records count.
  const records = await api.list(`name=${release},owner=helm`);
  return records.map((r) => {
    const version = r.labels.version ?? "";
    if (!/^[0-9]+$/.test(version)) {
      throw new TypeError(
        `Expected a revision number in ${r.name}'s label "version": found "${version}"`,
      );
    }
    return { revision: Number(version), status: statusOf(r.labels.status) };
  }).sort((a, b) => a.revision - b.revision);
}

/**
 * Marks a stale pending revision `failed` as Flux's helm-controller unlocks a release: its
 * `status` label and the JSON's `info`, guarded by the record's `resourceVersion`.
 *
 * @param expected The status the revision must still have, e.g. `pending-upgrade`.
 * @throws {HelmLockError} {@linkcode ExitCode.RecoveryFailed} when the record is gone, changed
 *   or unreadable, or the API server failed; {@linkcode ExitCode.Forbidden} when it refused.
 */
export async function markFailed(
  api: ReleaseRecordsApi,
  release: string,
  revision: number,
  expected: ReleaseStatus,
): Promise<void> {
  const name = `sh.helm.release.v1.${release}.v${revision}`; // the same for both drivers
  const what = `mark revision ${revision} of release "${release}" failed`;
  const fail = (why: string, cause?: unknown) =>
    new HelmLockError(ExitCode.RecoveryFailed, `Cannot ${what}: ${why}`, { cause });
  let record: ReleaseRecord | undefined;
  try {
    record = await api.read(name);
  } catch (err) {
    throw apiFailure(what, err);
  }
  if (record === undefined) throw fail(`expected its record ${name}, found none`);
  const labelled = record.labels.status;
  if (labelled !== expected) {
    throw fail(`expected it ${expected}, found ${labelled ?? "no status label"}`);
  }
  const why = `Release unlocked by helm-lock from stale '${expected}' state`;
  const json = setInfoStatus(await decodeRelease(record.release), "failed", why);
  const modifiedAt = String(Math.floor(Date.now() / 1000));
  try {
    await api.replace({
      ...record,
      labels: { ...record.labels, status: "failed", modifiedAt },
      release: await encodeRelease(json),
    });
  } catch (err) {
    if (statusCode(err) === 409 || statusCode(err) === 404) {
      throw fail(
        `expected its record ${name} unchanged since it was read, found it changed by another writer`,
        err,
      );
    }
    throw apiFailure(what, err);
  }
}

function apiFailure(what: string, err: unknown): HelmLockError {
  if (err instanceof HelmLockError) return err;
  const code = statusCode(err);
  const detail = (err instanceof Error ? err.message : String(err)).split("\n")[0];
  return new HelmLockError(
    code === 401 || code === 403 ? ExitCode.Forbidden : ExitCode.RecoveryFailed,
    `Cannot ${what}: expected the API server to accept the request, found ` +
      (code === undefined ? `no answer (${detail})` : `status ${code}`),
    { cause: err },
  );
}

/** helm's `decodeRelease`: base64, then gunzip when it is gzip (else plain JSON). */
async function decodeRelease(data: string): Promise<string> {
  const bytes = Uint8Array.fromBase64(data);
  if (!(bytes.length > 3 && bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[2] === 0x08)) {
    return new TextDecoder().decode(bytes);
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

/** helm's `encodeRelease`: gzip, then base64. */
async function encodeRelease(json: string): Promise<string> {
  const stream = new Blob([json]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer()).toBase64();
}

/**
 * Sets the release JSON's `info.status` and `info.description`, leaving every other byte as it
 * was: values may hold numbers no JavaScript number keeps exactly.
 *
 * @throws {HelmLockError} {@linkcode ExitCode.RecoveryFailed} when the JSON has no
 *   `info.status` string.
 */
function setInfoStatus(json: string, status: string, description: string): string {
  // The members of `info`: where each key and its (string or bare) value start and end.
  const info = new Map<string, { key: number; start: number; end: number }>();
  let inInfo = false;
  const open: Array<string | undefined> = []; // the key of each open object or array
  let key: { name: string; at: number } | undefined;
  let last: RegExpExecArray | undefined;
  for (const token of json.matchAll(/"(?:[^"\\]|\\.)*"|[{}[\],:]|[^\s{}[\],:"]+/g)) {
    const [t] = token;
    if (t === ":" && last) key = { name: JSON.parse(last[0]), at: last.index };
    else if (t === "{" || t === "[") {
      open.push(key?.name);
      inInfo ||= t === "{" && open.length === 2 && key?.name === "info";
      key = undefined;
    } else if (t === "}" || t === "]" || t === ",") {
      if (t !== ",") open.pop();
      key = undefined;
    } else if (key && open.length === 2 && open[1] === "info") {
      info.set(key.name, { key: key.at, start: token.index, end: token.index + t.length });
    }
    last = token;
  }
  const fail = (found: string) =>
    new HelmLockError(
      ExitCode.RecoveryFailed,
      `Cannot edit a helm release record: expected a release JSON with "info.status", found ${found}`,
    );
  if (!inInfo) throw fail('no "info" object');
  const at = info.get("status");
  if (at === undefined || json[at.start] !== '"') throw fail("no status string");
  const desc = info.get("description");
  const text = JSON.stringify(description);
  // Edited from the end, so that the offsets before stay right.
  const edits: Array<[number, number, string]> = desc === undefined
    ? [[at.start, at.end, JSON.stringify(status)], [at.key, at.key, `"description":${text},`]]
    : [[at.start, at.end, JSON.stringify(status)], [desc.start, desc.end, text]];
  return edits.sort((x, y) => y[0] - x[0])
    .reduce((out, [start, end, t]) => out.slice(0, start) + t + out.slice(end), json);
}

/** A Secret or ConfigMap as far as this module reads it. */
interface StoredObject {
  metadata?: { name?: string; labels?: Record<string, string>; resourceVersion?: string };
  data?: Record<string, string>;
}

/** {@linkcode ReleaseRecordsApi} on helm-lock's API client, the connection the lock uses. */
export function kubeRecords(
  client: KubeClient,
  namespace: string,
  driver: StorageDriver,
): ReleaseRecordsApi {
  const kind = driver === "secret" ? "secrets" : "configmaps";
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/${kind}`;
  const path = (name: string) => `${base}/${encodeURIComponent(name)}`;
  // The objects as read, so a replace keeps what this module does not know of (annotations,
  // owner references, fields newer helm versions may add).
  const seen = new Map<string, StoredObject>();
  const meta = ({ metadata: m }: StoredObject): RecordMeta => ({
    name: m?.name ?? "",
    labels: { ...m?.labels },
    ...(m?.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
  });
  // Secret data is base64 on the wire, over helm's own base64.
  const secret = driver === "secret";
  return {
    async list(labelSelector) {
      const list = await client.request<{ items?: StoredObject[] | null }>("GET", base, {
        query: { labelSelector },
        // The metadata alone: a release record holds the whole chart, up to about 1 MiB.
        accept: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
      });
      // A PartialObjectMetadataList of no record has `items: null`.
      return (list.items ?? []).map(meta);
    },
    async read(name) {
      try {
        const o = await client.request<StoredObject>("GET", path(name));
        seen.set(name, o);
        const data = o.data?.release ?? "";
        const release = secret ? new TextDecoder().decode(Uint8Array.fromBase64(data)) : data;
        return { ...meta(o), release };
      } catch (err) {
        if (statusCode(err) === 404) return undefined;
        throw err;
      }
    },
    async replace({ release, ...record }) {
      const old = seen.get(record.name) ?? {};
      await client.request("PUT", path(record.name), {
        body: {
          apiVersion: "v1",
          kind: secret ? "Secret" : "ConfigMap",
          ...old,
          metadata: { ...old.metadata, ...record },
          data: {
            ...old.data,
            release: secret ? new TextEncoder().encode(release).toBase64() : release,
          },
        },
      });
    },
  };
}
