/**
 * Removing what is dead from a release's queue (`take.ts`): tickets the API server has not
 * seen written for their lifetime, a head judged gone, our own strays, and our ticket once we
 * hold the lock. Each delete is guarded by uid and resourceVersion (what changed since is
 * kept), sent once per version and never waited for. Without the `delete` verb this says so
 * once; the tickets then go stale and are skipped.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { isStatus } from "../kube/api_error.ts";
import type { HoldContext } from "./hold.ts";
import { within } from "./lease.ts";
import { isStale, type Ticket } from "./tickets.ts";

/** Deletes dead tickets of one release, for one waiting job. */
export class Sweeper {
  readonly #ctx: HoldContext;
  /** Deletes already sent, by name and resourceVersion. */
  readonly #sent = new Set<string>();
  #noDeleteSaid = false;

  constructor(ctx: HoldContext) {
    this.#ctx = ctx;
  }

  /** Deletes `lease` (guarded by uid and resourceVersion), once per version; never waits. */
  delete(lease: V1Lease): void {
    const { name = "", uid = "", resourceVersion = "" } = lease.metadata ?? {};
    const key = `${name}@${resourceVersion}`;
    if (this.#sent.has(key)) return;
    this.#sent.add(key);
    within(this.#ctx, this.#ctx.api.delete(name, { uid, resourceVersion })).then(
      () => this.#ctx.cache.drop(name),
      (err) => {
        if (isStatus(err, 403)) this.#warnNoDelete();
      },
    );
  }

  /**
   * Deletes the tickets the API server has not seen written for their lifetime, and tickets
   * of ours other than `mine` (left by a create whose answer was lost).
   */
  collect(tickets: readonly Ticket[], mine: string): void {
    const serverNow = this.#ctx.cache.serverNow();
    for (const t of tickets) {
      const stray = t.info.identity === this.#ctx.identity && t.name !== mine;
      if (stray || isStale(t, serverNow)) this.delete(t.lease);
    }
  }

  #warnNoDelete(): void {
    if (this.#noDeleteSaid) return;
    this.#noDeleteSaid = true;
    this.#ctx.warn(
      `the Role of user "${this.#ctx.user}" lacks "delete" on leases in namespace ` +
        `"${this.#ctx.namespace}": cannot remove tickets of jobs that are gone; grant "delete" ` +
        `(see the README's RBAC)`,
    );
  }
}
