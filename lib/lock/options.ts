/**
 * The options and reports of the lock, shared by the holding (`lock.ts`) and the waiting
 * (`wait.ts`) side, kept apart so neither imports the other's types.
 *
 * @module
 */

import type { KubeClient } from "../kube/rest.ts";
import type { Clock, Sleep } from "./context.ts";
import type { LeaseApi } from "./lease_api.ts";

/** Who holds a lock, from its Lease. */
export interface LockHolderInfo {
  identity: string;
  ciJobUrl?: string;
  user?: string;
  host?: string;
  command?: string;
  /** When the holder took the lock (by its own clock). */
  since?: Date;
}

/** What {@linkcode LockOptions.onProgress} reports while waiting. */
export interface WaitProgress {
  /** Who holds the lock. */
  holder: LockHolderInfo;
  /** How long we have waited so far, in milliseconds. */
  waitedMs: number;
  /** How long the holder has held it (by its own clock), in milliseconds, when known. */
  heldForMs?: number;
  /** Our place in the deploy queue (`queue.ts`), when queuing. */
  queue?: QueuePlace;
}

/** Where a waiter stands in the deploy queue. */
export interface QueuePlace {
  /** 1 for the head of the queue (next to take the lock), 2 behind one waiter, ... */
  place: number;
  /** The waiter right ahead of us, when there is one. */
  ahead?: LockHolderInfo;
}

/** Options for {@linkcode acquireLock}. */
export interface LockOptions {
  /** The API server helm uses (`kubeClient()`). */
  client: KubeClient;
  /** The release namespace; the Lease lives there. */
  namespace: string;
  /** The release name; the Lease is `helm-lock-<release>`. */
  release: string;
  /** This process's holder identity (see `holderIdentity()`). */
  identity: string;
  /** Annotations telling waiters who we are (see `lockAnnotations()`). */
  annotations: Record<string, string>;
  /** How long to wait for the lock, in milliseconds (`--lock-timeout`). */
  timeoutMs: number;
  /**
   * The lease duration written to the Lease, in seconds.
   * @default {15}
   */
  leaseDurationSeconds?: number;
  /**
   * Whether a missing namespace's message suggests `--create-namespace` (only helm's
   * install and upgrade have it).
   * @default {false}
   */
  createNamespaceHint?: boolean;
  /** Called about every 10 s while waiting, for a progress line. */
  onProgress?: (progress: WaitProgress) => void;
  /** Told, once, what the user should fix (a Role lacking `delete` on leases). */
  warn?: (line: string) => void;
  /** Aborts waiting (the user pressed Ctrl-C); rejects with its reason. */
  signal?: AbortSignal;
  /** The user and server for messages. @default {from `client`} */
  user?: string;
  /** @default {from `client`} */
  server?: string;
  /** The Lease operations (tests put a fake API server here). @default {kubeLeaseApi(...)} */
  api?: LeaseApi;
  /** @default {performance.now() and new Date()} */
  clock?: Clock;
  /** @default {delay} */
  sleep?: Sleep;
  /** Source of jitter, in [0, 1). @default {Math.random} */
  random?: () => number;
  /** The deploy queue's say in when a free lock may be taken (`queue.ts`). @default {at once} */
  turn?: LockTurn;
}

/**
 * When a waiter may take a free lock: the deploy queue (`queue.ts`) lets only the head of
 * the queue take it at once, and the others only after it has been seen free for a while
 * (so a dead waiter ahead cannot block them).
 */
export interface LockTurn {
  /** How long the lock must have been seen free before we may take it (`Infinity`: never). */
  graceMs(): number;
  /** Dispatches `change` whenever `graceMs()` may have changed. */
  readonly changes: EventTarget;
}
