/**
 * Kubernetes `MicroTime` (a Lease's `acquireTime`, `renewTime`) without loading client-node.
 * @module
 */

/** A `Date` that serializes with six fractional digits (RFC 3339), as the API server parses it. */
export class MicroTime extends Date {
  override toISOString(): string {
    return `${super.toISOString().slice(0, -1)}000Z`;
  }
}
