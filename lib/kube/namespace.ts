/**
 * `--create-namespace` under the lock: the Lease lives in the release namespace, so it must
 * exist before the lock can be taken.
 * @module
 */
import { isStatus } from "./api_error.ts";
import type { KubeClient } from "./rest.ts";

/**
 * Creates `namespace` when it does not exist, as `helm --create-namespace` would; whether it
 * did. A user who may not read namespaces is left alone: the namespace may exist, and taking
 * the lock will say clearly if it does not.
 */
export async function ensureNamespace(client: KubeClient, namespace: string): Promise<boolean> {
  try {
    await client.request("GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}`);
    return false;
  } catch (err) {
    if (!isStatus(err, 404)) return false;
  }
  try {
    // helm labels the namespaces it creates with their name; do the same.
    await client.request("POST", "/api/v1/namespaces", {
      body: {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: namespace, labels: { name: namespace } },
      },
    });
    return true;
  } catch (err) {
    if (isStatus(err, 409)) return false; // a concurrent job created it first
    throw err;
  }
}
