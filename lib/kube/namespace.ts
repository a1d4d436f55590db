/**
 * `--create-namespace` under the lock: the Lease lives in the release namespace, so when helm
 * is asked to create that namespace, it must exist before the lock can be taken.
 *
 * @module
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { isStatus } from "./api_error.ts";

/**
 * Creates `namespace` when it does not exist, as `helm --create-namespace` would. A user who
 * may not read namespaces is left alone: the namespace may exist, and taking the lock will
 * say clearly if it does not.
 *
 * @returns Whether the namespace was created.
 */
export async function ensureNamespace(kc: KubeConfig, namespace: string): Promise<boolean> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await core.readNamespace({ name: namespace });
    return false;
  } catch (err) {
    if (!isStatus(err, 404)) return false;
  }
  try {
    // helm labels the namespaces it creates with their name; do the same.
    await core.createNamespace({
      body: { metadata: { name: namespace, labels: { name: namespace } } },
    });
    return true;
  } catch (err) {
    if (isStatus(err, 409)) return false; // a concurrent job created it first
    throw err;
  }
}
