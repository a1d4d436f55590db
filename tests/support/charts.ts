/**
 * The test charts in `tests/fixtures/` and the helm command lines the tests run them with.
 * Absolute paths, so that they hold whatever directory helm runs in.
 *
 * @module
 */
import { join } from "node:path";

const FIXTURES = join(import.meta.dirname!, "..", "fixtures");

/** A ConfigMap: installs and upgrades at once. */
export const FAST = join(FIXTURES, "fast");
/**
 * A Deployment: no controllers run on the test control plane, so it never becomes ready and
 * `helm upgrade --wait` stays mid-upgrade until helm is stopped.
 */
export const SLOW = join(FIXTURES, "slow");
/**
 * ConfigMaps whose name and number the values choose, one the API server rejects, or a hook
 * that never completes: the shapes of a release the recovery and storage tests need.
 */
export const SHAPES = join(FIXTURES, "shapes");

/**
 * `helm upgrade [--install] <release> SLOW -n <namespace> --wait --timeout 5m`: helm then
 * stays mid-upgrade (the release pending) for minutes, the deterministic "helm is mid-upgrade"
 * moment the tests stop, kill or fence it in. Flags to add go after it.
 */
export function slowUpgradeArgs(
  release: string,
  namespace: string,
  opts: { install?: boolean } = {},
): string[] {
  const install = opts.install ? ["--install"] : [];
  return ["upgrade", ...install, release, SLOW, "-n", namespace, "--wait", "--timeout", "5m"];
}
