/**
 * Events on the lock Lease: a record, never a reason to fail or wait (docs/design.md "Events").
 * @module
 */

import { isStatus } from "./api_error.ts";
import type { KubeClient } from "./rest.ts";

/** Records Events on one object. */
export interface EventRecorder {
  /** Sends an Event in the background. */
  record(reason: string, note: string, type?: "Normal" | "Warning"): void;
  /** Waits (at most `ms`) for the Events sent so far. */
  flush(ms?: number): Promise<void>;
}

/** What the Events are about and who reports them. */
export interface EventSubject {
  namespace: string;
  /** The object's kind, API version and name (the lock Lease). */
  kind: string;
  apiVersion: string;
  name: string;
  /** Its uid, when known (the lock may not exist while a job waits). */
  uid?: () => string | undefined;
  /** This process (the holder identity), reported as the reporting instance. */
  instance: string;
  /** Who runs us (a CI job URL, user and host): appended to each note. */
  job: string;
}

/** The API server's limit on an Event's message is 1 KiB; keep well inside it. */
const MAX_NOTE = 1000;

/** An Event recorder on `client`; `warn` is told once when Events cannot be recorded (RBAC). */
export function eventRecorder(
  client: KubeClient,
  subject: EventSubject,
  warn: (line: string) => void,
): EventRecorder {
  const path = `/api/v1/namespaces/${encodeURIComponent(subject.namespace)}/events`;
  const pending = new Set<Promise<void>>();
  let refused = false;
  return {
    record(reason, note, type = "Normal") {
      if (refused) return;
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z"); // seconds, as Event times are
      const uid = subject.uid?.();
      const message = `${note} (${subject.job})`;
      const sent = client.request("POST", path, {
        timeoutMs: 5_000,
        body: {
          apiVersion: "v1",
          kind: "Event",
          metadata: { generateName: `${subject.name}.`, namespace: subject.namespace },
          involvedObject: {
            apiVersion: subject.apiVersion,
            kind: subject.kind,
            name: subject.name,
            namespace: subject.namespace,
            ...(uid ? { uid } : {}),
          },
          reason,
          message: message.length > MAX_NOTE ? `${message.slice(0, MAX_NOTE - 1)}…` : message,
          type,
          source: { component: "helm-lock" },
          reportingComponent: "helm-lock",
          reportingInstance: subject.instance.slice(0, 128),
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      }).then(() => {}, (err) => {
        if (refused || !(isStatus(err, 403) || isStatus(err, 401))) return;
        refused = true;
        warn(
          `cannot record Kubernetes Events in namespace "${subject.namespace}" (forbidden to ` +
            `create events): grant "create" on events to see the lock's story in ` +
            `"kubectl get events"`,
        );
      });
      pending.add(sent);
      sent.finally(() => pending.delete(sent));
    },
    async flush(ms = 2_000) {
      if (pending.size === 0) return;
      const timeout = AbortSignal.timeout(ms);
      await Promise.race([
        Promise.all(pending),
        new Promise((resolve) => timeout.addEventListener("abort", resolve)),
      ]);
    },
  };
}
