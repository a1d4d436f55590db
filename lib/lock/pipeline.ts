/**
 * The CI system's pipeline number as a queue order key (README "Order of deploys", docs/ci.md).
 * @module
 */

import type { Order } from "./tickets.ts";

type Env = Record<string, string | undefined>;

/** GitHub's workflow file from `owner/repo/.github/workflows/x.yml@refs/heads/main`. */
function githubWorkflow(env: Env): string | undefined {
  const ref = env.GITHUB_WORKFLOW_REF;
  if (!ref) return env.GITHUB_WORKFLOW;
  const at = ref.lastIndexOf("@");
  return at > 0 ? ref.slice(0, at) : ref;
}

/**
 * Each CI system, in the order tried (docs/ci.md): when it runs us, its number, its series.
 * Azure's BUILD_BUILDNUMBER is a name, not a number: BUILD_BUILDID counts per organization.
 */
const SERIES: readonly [string, (e: Env) => boolean, string, (e: Env) => string | undefined][] = [
  [
    "gitlab",
    (e) => e.GITLAB_CI === "true",
    "CI_PIPELINE_IID",
    (e) => e.CI_PROJECT_ID ?? e.CI_PROJECT_PATH,
  ],
  [
    "github",
    (e) => e.GITHUB_ACTIONS === "true",
    "GITHUB_RUN_NUMBER",
    (e) => e.GITHUB_REPOSITORY && `${e.GITHUB_REPOSITORY}:${githubWorkflow(e) ?? ""}`,
  ],
  ["woodpecker", (e) => e.CI === "woodpecker", "CI_PIPELINE_NUMBER", (e) => e.CI_REPO],
  ["jenkins", (e) => !!e.JENKINS_URL, "BUILD_NUMBER", (e) => e.JOB_NAME],
  ["azure", (e) => e.TF_BUILD === "True", "BUILD_BUILDID", (e) => e.SYSTEM_COLLECTIONURI],
  [
    "circleci",
    (e) => e.CIRCLECI === "true",
    "CIRCLE_BUILD_NUM",
    (e) =>
      e.CIRCLE_PROJECT_REPONAME &&
      `${e.CIRCLE_PROJECT_USERNAME ?? ""}/${e.CIRCLE_PROJECT_REPONAME}`,
  ],
  [
    "buildkite",
    (e) => e.BUILDKITE === "true",
    "BUILDKITE_BUILD_NUMBER",
    (e) =>
      e.BUILDKITE_PIPELINE_SLUG &&
      `${e.BUILDKITE_ORGANIZATION_SLUG ?? ""}/${e.BUILDKITE_PIPELINE_SLUG}`,
  ],
  [
    "bitbucket",
    (e) => !!e.BITBUCKET_BUILD_NUMBER,
    "BITBUCKET_BUILD_NUMBER",
    (e) => e.BITBUCKET_REPO_FULL_NAME,
  ],
  ["drone", (e) => e.DRONE === "true", "DRONE_BUILD_NUMBER", (e) => e.DRONE_REPO],
];

/** The CI pipeline's number as a queue order; `undefined` without a whole number. */
export function pipelineOrder(env: Env): Pick<Order, "key" | "scope"> | undefined {
  for (const [system, detect, number, scopeOf] of SERIES) {
    if (!detect(env)) continue;
    const text = env[number] ?? "";
    const scope = scopeOf(env);
    const key = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(key) || !scope) return undefined;
    return { key, scope: `${system}:${scope}`.slice(0, 128) };
  }
  return undefined;
}
