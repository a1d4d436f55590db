/**
 * This job's own ticket while it waits (`take.ts`): created at the back of the queue, written
 * every 20 s so the API server sees it alive, deleted when the job takes the lock or gives up.
 * A ticket that cannot be deleted is left to go stale: the next job that sees it removes it.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { apiError, isStatus } from "../kube/api_error.ts";
import type { HoldContext } from "./hold.ts";
import { action, isTransient, within } from "./lease.ts";
import { isTicketName } from "./names.ts";
import { renewedTicket, ticketBody, type TicketSpec, TicketTimings } from "./tickets.ts";

/** Our ticket: its Lease as last written, its place, and when it is next written. */
export class OwnTicket {
  readonly #ctx: HoldContext;
  readonly #spec: Omit<TicketSpec, "namespace" | "release" | "identity">;
  #lease: V1Lease | undefined;
  /** The creation resourceVersion: our place in the queue, also once the lock is ours. */
  #position = "";
  #renewAt = Infinity;

  constructor(ctx: HoldContext, spec: Omit<TicketSpec, "namespace" | "release" | "identity">) {
    this.#ctx = ctx;
    this.#spec = spec;
  }

  /** The ticket's name, "" when we hold none. */
  get name(): string {
    return this.#lease?.metadata?.name ?? "";
  }

  /** The ticket's creation resourceVersion ("" before we queued). */
  get position(): string {
    return this.#position;
  }

  /** When the ticket is next to be written (local ms; Infinity without one). */
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

  /**
   * Creates the ticket (at the back of the queue: its order is the server's), or takes over
   * `spare`, a ticket cleared by a job whose Role lacks `delete` (`sweeper.ts`): its new
   * resourceVersion is as much the server's order as a creation's.
   *
   * @returns The ticket as written.
   * @throws {unknown} the API server's error (409 when another job took the spare first); the
   *   caller decides what is transient.
   */
  async create(spare?: V1Lease): Promise<V1Lease> {
    const { api, clock, namespace, release, identity } = this.#ctx;
    const body = ticketBody({ ...this.#spec, namespace, release, identity }, clock.date());
    const written = await within(
      this.#ctx,
      spare
        ? api.replace({
          ...body,
          metadata: {
            ...body.metadata,
            name: spare.metadata?.name ?? "",
            uid: spare.metadata?.uid ?? "",
            resourceVersion: spare.metadata?.resourceVersion ?? "",
          },
        })
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

  /** Forgets the ticket (it was removed by a job that judged us gone) and returns it. */
  drop(): V1Lease | undefined {
    const mine = this.#lease;
    this.#lease = undefined;
    return mine;
  }

  /** Deletes the ticket (guarded) when we give up waiting; a failure leaves it to go stale. */
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
      await api.delete(name, {
        uid: fresh.metadata?.uid ?? "",
        resourceVersion: fresh.metadata?.resourceVersion ?? "",
      }).catch(() => {});
    });
  }
}
