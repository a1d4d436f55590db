/**
 * Fencing (issue 10): a holder that lost its lock, is paused or is dead cannot write to the
 * cluster. helm talks to the API server through a local pass-through (`passthrough.ts`) that
 * forwards bytes only while the lock is valid by the monotonic clock, and cuts every
 * connection when it is not; `plan.ts` decides whether helm can be pointed at it (through
 * the environment, never argv) and `proxy.ts` reaches the server through the user's proxy;
 * `kube_cache.ts` gives helm a client-go cache of the run's own, kept with its port for the
 * next run once helm has exited (client-go keys its caches by the fence's port).
 *
 * May import: the shared leaves in `lib/`. Nothing from `kube/`, `lock/`, `helm/` or `cli/`:
 * the fence knows the lock only as a `validUntil()` number.
 *
 * @module
 */

export { KubeCache } from "./kube_cache.ts";
export { type FencePlan, type FenceTarget, planFence } from "./plan.ts";
export { PassThrough, type PassThroughOptions, type PassThroughStats } from "./passthrough.ts";
export { dialUpstream, type Upstream } from "./proxy.ts";
