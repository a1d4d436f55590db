/**
 * Kubernetes `MicroTime` (a Lease's `acquireTime`, `renewTime`): RFC 3339 with six
 * fractional digits, as the API server parses it. Structurally client-node's `V1MicroTime`,
 * without loading client-node.
 * @module
 */

/** A `Date` that serializes (`toISOString`, `JSON.stringify`) with microseconds. */
export class MicroTime extends Date {
  override toISOString(): string {
    return `${super.toISOString().slice(0, -1)}000Z`;
  }
}
