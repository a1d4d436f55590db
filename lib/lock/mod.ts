/**
 * The lock: a `coordination.k8s.io/v1` Lease `helm-lock-<release>` (DESIGN §2). Acquiring
 * (`lock.ts`), waiting (`wait.ts`), holding and renewing, loss detection and the guarded
 * release (`hold.ts`); the deploy queue in front of it (`queue.ts`, `queue_api.ts`); what
 * both sides share (`context.ts`, `options.ts`); the Lease operations
 * (`lease_api.ts`); who we are and what waiters are told (`identity.ts`).
 *
 * May import: `kube/` (API errors, the connection) and the shared leaves in `lib/`.
 * Nothing from `helm/` or `cli/`: the lock knows nothing of helm.
 *
 * @module
 */

export { acquireLock, type HeldLock, holderInfo, LockDefaults } from "./lock.ts";
export { type HoldTimings, holdTimings } from "./context.ts";
export type { Clock, Sleep } from "./context.ts";
export type { LockHolderInfo, LockOptions, WaitProgress } from "./options.ts";
export { countingApi, kubeLeaseApi, type LeaseApi, type LeaseEvent } from "./lease_api.ts";
export {
  acquireInOrder,
  isSuperseded,
  type QueuedLock,
  type QueueMode,
  type QueueOptions,
} from "./queue.ts";
export { kubeQueueApi, type QueueApi } from "./queue_api.ts";
export { Annotation, ciJobUrl, holderIdentity, lockAnnotations } from "./identity.ts";
