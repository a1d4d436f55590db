/**
 * The deploy record of `--lock-order-key` (docs/design.md §2 "An order key is checked twice").
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { ExitCode, HelmLockError } from "../errors.ts";
import { isStatus } from "../kube/api_error.ts";
import type { HoldContext } from "./hold.ts";
import { bounded, within } from "./lease.ts";
import { PREFIX, releaseLabels, stateName } from "./names.ts";
import { int } from "./tickets.ts";

export const RecordAnnotation = {
  deployedKey: `${PREFIX}deployed-order-key`,
  deployedBy: `${PREFIX}deployed-by`,
  deployedAt: `${PREFIX}deployed-at`,
} as const;

const keyOf = (state: V1Lease | undefined) =>
  int(state?.metadata?.annotations?.[RecordAnnotation.deployedKey]);

/** The refusal (exit 8) of a key lower than the last successful deploy's, else `undefined`. */
export function outdated(
  state: V1Lease | undefined,
  key: number | undefined,
  where: string,
): HelmLockError | undefined {
  const deployed = keyOf(state);
  if (key === undefined || deployed === undefined || key >= deployed) return undefined;
  const a = state?.metadata?.annotations ?? {};
  const by = bounded(a[RecordAnnotation.deployedBy]);
  const at = bounded(a[RecordAnnotation.deployedAt], 40);
  return new HelmLockError(
    ExitCode.Superseded,
    `Cannot deploy ${where} as order key ${key} is outdated: expected at least ${deployed}, ` +
      `the key of the last successful deploy${by ? ` by ${by}` : ""}${at ? ` at ${at}` : ""}`,
  );
}

/** `record()` after a successful deploy (compare-and-swap), `forget()` after an uninstall. */
export function deployRecord(
  ctx: HoldContext,
  o: { refuseOutdated: boolean; key: number | undefined; jobUrl: string | undefined },
): { record(): Promise<void>; forget(): Promise<void> } {
  const { api, release } = ctx;
  const name = stateName(release);
  return {
    record: async () => {
      const key = o.key;
      if (!o.refuseOutdated || key === undefined) return;
      const by = o.jobUrl ? `CI job ${o.jobUrl}` : `"${ctx.identity}"`;
      const now = ctx.clock.date();
      let state = ctx.cache.get(name); // as last read: saves a read when it is still current
      for (let attempt = 0; attempt < 5; attempt++) {
        if (attempt > 0) state = await api.get(name);
        const { managedFields: _m, ...meta } = state?.metadata ?? {};
        const annotations = {
          ...meta.annotations,
          [RecordAnnotation.deployedKey]: String(Math.max(keyOf(state) ?? key, key)),
          [RecordAnnotation.deployedBy]: by,
          [RecordAnnotation.deployedAt]: now.toISOString(),
        };
        const labels = { ...meta.labels, ...releaseLabels(release) };
        try {
          if (state) await api.replace({ ...state, metadata: { ...meta, labels, annotations } });
          else {
            await api.create({
              apiVersion: "coordination.k8s.io/v1",
              kind: "Lease",
              metadata: { name, namespace: ctx.namespace, labels, annotations },
              spec: {},
            });
          }
          return;
        } catch (err) {
          if (!isStatus(err, 409)) throw err;
        }
      }
    },
    forget: async () => {
      const record = ctx.cache.get(name) ?? await within(ctx, api.get(name));
      if (!record) return;
      const { uid = "", resourceVersion = "" } = record.metadata ?? {};
      await within(ctx, api.delete(name, { uid, resourceVersion })).catch((err) => {
        if (!isStatus(err, 404) && !isStatus(err, 409)) throw err;
      });
    },
  };
}
