import { ADVERSARIAL, assertLinear } from "../support/linear.ts";
import assert from "node:assert/strict";
import { Annotation, holderIdentity, lockAnnotations } from "../../lib/lock/identity.ts";

/** The CI job URL lockAnnotations() records for `env`. */
const ciJobUrl = (env: Record<string, string>) =>
  lockAnnotations({ command: "", env })[Annotation.ciJobUrl];

Deno.test("holderIdentity() names the host and the pid", () => {
  const id = holderIdentity();
  assert.ok(id.startsWith(`${Deno.hostname()}-${Deno.pid}-`), id);
  assert.match(id, /-[0-9a-f]{16}$/);
});

Deno.test("holderIdentity() differs between calls in the same process and second", () => {
  const ids = new Set(Array.from({ length: 1000 }, () => holderIdentity()));
  assert.equal(ids.size, 1000);
});

// Each CI system as its documentation describes its variables (docs/ci.md).
const CI_SYSTEMS: [string, Record<string, string>, string][] = [
  [
    "GitLab",
    { CI_JOB_URL: "https://gitlab.example/g/p/-/jobs/42", CI: "true" },
    "https://gitlab.example/g/p/-/jobs/42",
  ],
  [
    "GitHub Actions, the run attempt",
    {
      GITHUB_SERVER_URL: "https://github.example/",
      GITHUB_REPOSITORY: "acme/app",
      GITHUB_RUN_ID: "1234",
      GITHUB_RUN_ATTEMPT: "2",
    },
    "https://github.example/acme/app/actions/runs/1234/attempts/2",
  ],
  [
    "GitHub Actions without an attempt (GitHub Enterprise Server before 3.5)",
    { GITHUB_REPOSITORY: "acme/app", GITHUB_RUN_ID: "1234" },
    "https://github.com/acme/app/actions/runs/1234",
  ],
  [
    "GitHub Actions with a job-level CI_JOB_URL set by the workflow",
    {
      GITHUB_REPOSITORY: "acme/app",
      GITHUB_RUN_ID: "1234",
      CI_JOB_URL: "https://github.com/acme/app/actions/runs/1234/job/5678",
    },
    "https://github.com/acme/app/actions/runs/1234/job/5678",
  ],
  [
    "Azure Pipelines, at the job's log",
    {
      TF_BUILD: "True",
      SYSTEM_COLLECTIONURI: "https://dev.azure.com/fabrikam/",
      SYSTEM_TEAMPROJECT: "Fabrikam Fiber",
      BUILD_BUILDID: "310",
      SYSTEM_JOBID: "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
    },
    "https://dev.azure.com/fabrikam/Fabrikam%20Fiber/_build/results?buildId=310&view=logs" +
    "&j=12f1170f-54f2-53f3-20dd-22fc7dff55f9",
  ],
  [
    "Azure DevOps Server, the build",
    {
      SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: "https://tfs.example/DefaultCollection/",
      SYSTEM_TEAMPROJECT: "app",
      BUILD_BUILDID: "7",
    },
    "https://tfs.example/DefaultCollection/app/_build/results?buildId=7",
  ],
  [
    "CircleCI",
    { CIRCLECI: "true", CIRCLE_BUILD_URL: "https://circleci.com/gh/acme/app/123" },
    "https://circleci.com/gh/acme/app/123",
  ],
  [
    "Buildkite, at the job",
    {
      BUILDKITE: "true",
      BUILDKITE_BUILD_URL: "https://buildkite.com/acme/app/builds/1514",
      BUILDKITE_JOB_ID: "e44f9784-e20e-4b93-a21d-f41fd5869db9",
    },
    "https://buildkite.com/acme/app/builds/1514#e44f9784-e20e-4b93-a21d-f41fd5869db9",
  ],
  [
    "Bitbucket Pipelines, at the step",
    {
      BITBUCKET_WORKSPACE: "acme",
      BITBUCKET_REPO_SLUG: "app",
      BITBUCKET_BUILD_NUMBER: "77",
      BITBUCKET_STEP_UUID: "{a1b2c3d4-0000-4000-8000-000000000001}",
    },
    "https://bitbucket.org/acme/app/pipelines/results/77/steps/" +
    "%7Ba1b2c3d4-0000-4000-8000-000000000001%7D",
  ],
  [
    "Woodpecker, the step",
    {
      CI: "woodpecker",
      CI_PIPELINE_URL: "https://ci.example/repos/7/pipeline/8",
      CI_STEP_URL: "https://ci.example/repos/7/pipeline/8/3",
    },
    "https://ci.example/repos/7/pipeline/8/3",
  ],
  [
    "Woodpecker before CI_STEP_URL, the pipeline",
    { CI: "woodpecker", CI_PIPELINE_URL: "https://ci.example/repos/7/pipeline/8" },
    "https://ci.example/repos/7/pipeline/8",
  ],
  [
    "Drone",
    { DRONE: "true", DRONE_BUILD_LINK: "https://drone.example/octocat/hello-world/42" },
    "https://drone.example/octocat/hello-world/42",
  ],
  ["Jenkins", { BUILD_URL: "https://ci.example/job/app/7/" }, "https://ci.example/job/app/7/"],
];

for (const [system, env, url] of CI_SYSTEMS) {
  Deno.test(`ciJobUrl() finds the job of ${system}`, () => {
    assert.equal(ciJobUrl(env), url);
  });
}

Deno.test("ciJobUrl() does not take GitLab's pipeline URL for Woodpecker's", () => {
  assert.equal(
    ciJobUrl({ CI: "true", CI_PIPELINE_URL: "https://gitlab.example/p/-/pipelines/1" }),
    undefined,
  );
});

Deno.test("ciJobUrl() ignores empty variables, as an unset one", () => {
  assert.equal(
    ciJobUrl({ CI_JOB_URL: "", BUILD_URL: "https://ci.example/job/app/7/" }),
    "https://ci.example/job/app/7/",
  );
});

Deno.test("lockAnnotations() hides the user info of every CI system's URL", () => {
  // The systems whose URL comes from a variable (not built from names alone).
  for (
    const [system, env] of CI_SYSTEMS.filter(([, e]) => /https:/.test(Object.values(e).join()))
  ) {
    const withUser = Object.fromEntries(
      Object.entries(env).map(([k, v]) => [k, v.replace("https://", "https://ci:pass@")]),
    );
    const url = lockAnnotations({ command: "x", env: withUser })[Annotation.ciJobUrl] ?? "";
    assert.ok(url.startsWith("https://***@"), `${system}: ${url}`);
    assert.ok(!url.includes("pass"), `${system}: ${url}`);
  }
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
