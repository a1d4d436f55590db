import { ADVERSARIAL, assertLinear } from "../support/linear.ts";
import assert from "node:assert/strict";
import { Annotation, ciJobUrl, holderIdentity, lockAnnotations } from "../../lib/lock/identity.ts";

Deno.test("holderIdentity() names the host and the pid", () => {
  const id = holderIdentity();
  assert.ok(id.startsWith(`${Deno.hostname()}-${Deno.pid}-`), id);
  assert.match(id, /-[0-9a-f]{16}$/);
});

Deno.test("holderIdentity() differs between calls in the same process and second", () => {
  const ids = new Set(Array.from({ length: 1000 }, () => holderIdentity()));
  assert.equal(ids.size, 1000);
});

Deno.test("ciJobUrl() reads GitLab's CI_JOB_URL", () => {
  assert.equal(
    ciJobUrl({ CI_JOB_URL: "https://gitlab.example/g/p/-/jobs/42" }),
    "https://gitlab.example/g/p/-/jobs/42",
  );
});

Deno.test("ciJobUrl() builds the GitHub Actions run URL", () => {
  assert.equal(
    ciJobUrl({
      GITHUB_SERVER_URL: "https://github.example/",
      GITHUB_REPOSITORY: "acme/app",
      GITHUB_RUN_ID: "1234",
    }),
    "https://github.example/acme/app/actions/runs/1234",
  );
});

Deno.test("ciJobUrl() reads Jenkins' BUILD_URL", () => {
  assert.equal(
    ciJobUrl({ BUILD_URL: "https://ci.example/job/app/7/" }),
    "https://ci.example/job/app/7/",
  );
});

Deno.test("ciJobUrl() is undefined outside CI", () => {
  assert.equal(ciJobUrl({ HOME: "/home/me" }), undefined);
});

Deno.test("lockAnnotations() records job, user, host and command", () => {
  const annotations = lockAnnotations({
    command: "upgrade my-rel ./chart --set password=***",
    env: { CI_JOB_URL: "https://gitlab.example/jobs/1", GITLAB_USER_LOGIN: "alice", USER: "root" },
  });
  assert.deepEqual(annotations, {
    [Annotation.ciJobUrl]: "https://gitlab.example/jobs/1",
    [Annotation.user]: "alice",
    [Annotation.host]: Deno.hostname(),
    [Annotation.command]: "upgrade my-rel ./chart --set password=***",
  });
});

Deno.test("lockAnnotations() leaves out the CI job when unknown", () => {
  const annotations = lockAnnotations({ command: "install x", env: { USER: "bob" } });
  assert.equal(annotations[Annotation.ciJobUrl], undefined);
  assert.equal(annotations[Annotation.user], "bob");
  assert.ok(Object.keys(annotations).every((k) => k.startsWith("helm-lock.dev/")));
});

Deno.test("lockAnnotations() shortens a very long command", () => {
  const annotations = lockAnnotations({ command: "x".repeat(5000), env: {} });
  assert.equal(annotations[Annotation.command]?.length, 1024);
});

Deno.test("lockAnnotations() stores no URL credentials in any annotation (issue 17)", () => {
  const annotations = lockAnnotations({
    command: "upgrade app oci://robot:RegPassXYZ@registry.example/app",
    env: {
      CI_JOB_URL: "https://ciuser:CiPassXYZ@ci.example.com/job/77",
      USER: "https://u:UserPassXYZ@x",
    },
  });
  assert.equal(annotations[Annotation.ciJobUrl], "https://***@ci.example.com/job/77");
  assert.doesNotMatch(JSON.stringify(annotations), /PassXYZ|ciuser|robot/);
  const jenkins = lockAnnotations({
    command: "x",
    env: { BUILD_URL: "http://jenkins:tok@jenkins.example/job/1/" },
  });
  assert.equal(jenkins[Annotation.ciJobUrl], "http://***@jenkins.example/job/1/");
});

for (const [shape, make] of Object.entries(ADVERSARIAL)) {
  Deno.test(`ciJobUrl() and lockAnnotations() are linear in the input: ${shape}`, () => {
    assertLinear(
      "ciJobUrl()",
      make,
      (s) => ciJobUrl({ GITHUB_RUN_ID: "1", GITHUB_REPOSITORY: "o/r", GITHUB_SERVER_URL: s }),
    );
    assertLinear(
      "lockAnnotations()",
      make,
      (s) => lockAnnotations({ command: s, env: { CI_JOB_URL: s, USER: s } }),
    );
  });
}
