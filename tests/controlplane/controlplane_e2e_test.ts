/** The test control plane leaves no process behind, even when its parent is SIGKILLed. */
import assert from "node:assert/strict";
import { lines } from "../support/lines.ts";
import { waitFor } from "../support/helm.ts";

function alive(pid: number): boolean {
  try {
    // /proc/<pid>/stat's third field is the state; a zombie (Z) has exited already.
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

Deno.test({
  name: "control plane processes exit when the process that started them is SIGKILLed",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "tests/support/start_controlplane.ts"],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const output = lines(child.stdout);
    const first = await output.next();
    const { pids } = JSON.parse(first.value ?? "{}") as { pids: number[] };
    assert.equal(pids.length, 2);
    assert.ok(pids.every(alive), "etcd and kube-apiserver run while their parent lives");

    child.kill("SIGKILL");
    await child.status;
    await output.return(undefined);
    await waitFor(
      "etcd and kube-apiserver to exit",
      () => Promise.resolve(pids.some(alive) ? undefined : true),
      20_000,
    );
    assert.deepEqual(pids.filter(alive), []);
  },
});
