/**
 * The queue's writes of one waiting job: its own ticket, and the removal of dead ones.
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { apiError, isStatus } from "../kube/api_error.ts";
import type { HoldContext } from "./hold.ts";
import { action } from "./cache.ts";
import { isTransient, within } from "./lease.ts";
import { isTicketName } from "./names.ts";
import {
  isStale,
  type Order,
  renewedTicket,
  type Ticket,
  ticketBody,
  TicketTimings,
} from "./tickets.ts";

/** Our ticket, written every 20 s so the API server sees it alive. */
export class OwnTicket {
  readonly #ctx: HoldContext;
  readonly #spec: Order & { annotations: Record<string, string> };
  #lease: V1Lease | undefined;
  /** The creation resourceVersion: our place in the queue, also once the lock is ours. */
  #position = "";
  #renewAt = Infinity;

  constructor(ctx: HoldContext, spec: Order & { annotations: Record<string, string> }) {
    this.#ctx = ctx;
    this.#spec = spec;
  }

  /** "" when we hold none. */
  get name(): string {
    return this.#lease?.metadata?.name ?? "";
  }

  get position(): string {
    return this.#position;
  }

  get renewAt(): number {
    return this.#lease ? this.#renewAt : Infinity;
  }

  /** A ticket cleared by a job without `delete`, to take over rather than make another. */
  spare(): V1Lease | undefined {
    const { cache, release } = this.#ctx;
    return cache.values().find((l) =>
      !l.spec?.holderIdentity && isTicketName(l.metadata?.name ?? "", release)
    );
  }

  /** Creates the ticket, or takes over `spare` (its new resourceVersion orders it as well). */
  async create(spare?: V1Lease): Promise<V1Lease> {
    const { api, clock, namespace, release, identity } = this.#ctx;
    const body = ticketBody({ ...this.#spec, namespace, release, identity }, clock.date());
    const { name = "", uid = "", resourceVersion = "" } = spare?.metadata ?? {};
    const written = await within(
      this.#ctx,
      spare
        ? api.replace({ ...body, metadata: { ...body.metadata, name, uid, resourceVersion } })
        : api.create(body),
    );
    this.#lease = written;
    this.#position = written.metadata?.resourceVersion ?? "";
    this.#ctx.cache.put(written);
    this.#renewAt = clock.now() + TicketTimings.renewMs;
    return written;
  }

  /** Writes the ticket so the server sees it alive; a removed one is simply gone. */
  async renew(): Promise<void> {
    const { api, clock, cache } = this.#ctx;
    const mine = this.#lease;
    if (!mine) return;
    this.#renewAt = clock.now() + TicketTimings.renewMs;
    try {
      const written = await within(
        this.#ctx,
        api.replace(renewedTicket(mine, this.#position, clock.date())),
      );
      if (this.#lease === mine) this.#lease = written;
      cache.put(written);
    } catch (err) {
      if (isStatus(err, 404)) cache.drop(mine.metadata?.name ?? "");
      else if (isStatus(err, 409)) {
        const fresh = await within(this.#ctx, api.get(mine.metadata?.name ?? "")).catch(() =>
          undefined
        );
        if (fresh?.spec?.holderIdentity === this.#ctx.identity && this.#lease === mine) {
          this.#lease = fresh;
          this.#renewAt = clock.now();
        }
      } else {
        this.#renewAt = clock.now() + TicketTimings.renewMs / 4;
        if (!isTransient(err)) throw apiError(err, action(this.#ctx, "update"));
      }
    }
  }

  drop(): V1Lease | undefined {
    const mine = this.#lease;
    this.#lease = undefined;
    return mine;
  }

  /** Deletes the ticket when we give up waiting; a failure leaves it to go stale. */
  async leave(): Promise<void> {
    const mine = this.drop();
    if (!mine) return;
    const { api, identity } = this.#ctx;
    const { uid = "", resourceVersion = "", name = "" } = mine.metadata ?? {};
    await within(this.#ctx, api.delete(name, { uid, resourceVersion })).catch(async (err) => {
      if (!isStatus(err, 409)) return;
      // Renewed in between: delete the version that is there, if it is still ours.
      const fresh = await api.get(name).catch(() => undefined);
      if (fresh?.spec?.holderIdentity !== identity) return;
      const { uid: freshUid = "", resourceVersion: freshVersion = "" } = fresh.metadata ?? {};
      await api.delete(name, { uid: freshUid, resourceVersion: freshVersion }).catch(() => {});
    });
  }
}

/**
 * Removes what is dead from the queue, each delete guarded, sent once per version and never
 * waited for. Without the `delete` verb a ticket is cleared instead (its holder emptied), and
 * the next job that must wait takes it over: a release keeps one spare, not a growing pile.
 */
export class Sweeper {
  readonly #ctx: HoldContext;
  readonly #sent = new Set<string>();
  #noDelete = false;

  constructor(ctx: HoldContext) {
    this.#ctx = ctx;
  }

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
          const { user, namespace, warn } = this.#ctx;
          if (!this.#noDelete) {
            warn(
              `the Role of user "${user}" lacks "delete" on leases in namespace "${namespace}": ` +
                `queue tickets are cleared for reuse instead of removed, and one stays; grant ` +
                `"delete" (see the README's RBAC)`,
            );
          }
          this.#noDelete = true;
          return this.#clear(lease);
        },
      );
    removed.catch(() => {}); // What is not removed goes stale and is skipped.
  }

  async #clear(lease: V1Lease): Promise<void> {
    const { managedFields: _m, ...metadata } = lease.metadata ?? {};
    const cleared = { ...lease, metadata, spec: { ...lease.spec, holderIdentity: "" } };
    this.#ctx.cache.put(await within(this.#ctx, this.#ctx.api.replace(cleared)));
  }

  /** Deletes dead tickets, and ours other than `mine` (left by a create whose answer was lost). */
  collect(tickets: readonly Ticket[], mine: string): void {
    const serverNow = this.#ctx.cache.serverNow();
    for (const t of tickets) {
      const stray = t.info.identity === this.#ctx.identity && t.name !== mine;
      if (stray || isStale(t, serverNow)) this.delete(t.lease);
    }
  }
}
