/**
 * Removing what is dead from a release's queue (`take.ts`): tickets the API server has not
 * seen written for their lifetime, a head judged gone, our own strays, and our ticket once we
 * hold the lock. Each delete is guarded by uid and resourceVersion (what changed since is
 * kept), sent once per version and never waited for.
 *
 * Without the `delete` verb (said once) a ticket is cleared instead: its holder emptied, so it
 * is no ticket any more, and the next job that must wait takes it over (`own_ticket.ts`)
 * instead of creating another. A release then keeps one spare ticket, not a growing pile.
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
  /** The Role lacks `delete`: clear instead. */
  #noDelete = false;

  constructor(ctx: HoldContext) {
    this.#ctx = ctx;
  }

  /** Deletes `lease` (guarded by uid and resourceVersion), once per version; never waits. */
  delete(lease: V1Lease): void {
    const { name = "", uid = "", resourceVersion = "" } = lease.metadata ?? {};
    const key = `${name}@${resourceVersion}`;
    if (this.#sent.has(key)) return;
    this.#sent.add(key);
    const removed = this.#noDelete
      ? this.#clear(lease)
      : within(this.#ctx, this.#ctx.api.delete(name, { uid, resourceVersion })).then(
        () => this.#ctx.cache.drop(name),
        (err) => {
          if (!isStatus(err, 403)) throw err;
          this.#warnNoDelete();
          return this.#clear(lease);
        },
      );
    removed.catch(() => {}); // What is not removed goes stale and is skipped.
  }

  /** Empties a ticket's holder (guarded by its resourceVersion): it is a ticket no more. */
  async #clear(lease: V1Lease): Promise<void> {
    const { managedFields: _m, ...metadata } = lease.metadata ?? {};
    const cleared = { ...lease, metadata, spec: { ...lease.spec, holderIdentity: "" } };
    this.#ctx.cache.put(await within(this.#ctx, this.#ctx.api.replace(cleared)));
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
    if (this.#noDelete) return;
    this.#noDelete = true;
    this.#ctx.warn(
      `the Role of user "${this.#ctx.user}" lacks "delete" on leases in namespace ` +
        `"${this.#ctx.namespace}": queue tickets are cleared for reuse instead of removed, and ` +
        `one stays; grant "delete" (see the README's RBAC)`,
    );
  }
}
