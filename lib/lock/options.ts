/**
 * The options and reports of the lock, shared by the holding (`lock.ts`) and the waiting
 * (`wait.ts`) side, kept apart so neither imports the other's types.
 *
 * @module
 */

import type { KubeConfig } from "@kubernetes/client-node";
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
}

/** Options for {@linkcode acquireLock}. */
export interface LockOptions {
  /** The connection helm uses. */
  kubeConfig: KubeConfig;
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
  /** The user and server for messages. @default {from `kubeConfig`} */
  user?: string;
  /** @default {from `kubeConfig`} */
  server?: string;
  /** The Lease operations (tests put a fake API server here). @default {kubeLeaseApi(...)} */
  api?: LeaseApi;
  /** @default {performance.now() and new Date()} */
  clock?: Clock;
  /** @default {delay} */
  sleep?: Sleep;
  /** Source of jitter, in [0, 1). @default {Math.random} */
  random?: () => number;
}
