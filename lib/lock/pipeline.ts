/**
 * The CI system's pipeline number, when the environment has one: waiting jobs of a later
 * pipeline of a release never deploy before a waiting job of an earlier one, even when they
 * reach the API server out of order (`tickets.ts`). Unlike `--lock-order-key`, an older deploy
 * is never refused for it.
 *
 * Each number is scoped to the series it counts in (a GitLab project, a GitHub workflow, a
 * Jenkins job, ...): numbers of different series are not compared.
 *
 * @module
 */

import type { Order } from "./tickets.ts";

type Env = Record<string, string | undefined>;

/** One CI system: when it runs us, which variable counts and what scopes it. */
interface Series {
  system: string;
  detect(env: Env): boolean;
  number: string;
  scope(env: Env): string | undefined;
}

/** GitHub's workflow file from `owner/repo/.github/workflows/x.yml@refs/heads/main`. */
function githubWorkflow(env: Env): string | undefined {
  const ref = env.GITHUB_WORKFLOW_REF;
  if (!ref) return env.GITHUB_WORKFLOW;
  const at = ref.lastIndexOf("@");
  return at > 0 ? ref.slice(0, at) : ref;
}

/** The series, in the order they are tried. Documented in docs/ci.md. */
const SERIES: readonly Series[] = [
  {
    // Per project: https://docs.gitlab.com/ci/variables/predefined_variables/
    system: "gitlab",
    detect: (e) => e.GITLAB_CI === "true",
    number: "CI_PIPELINE_IID",
    scope: (e) => e.CI_PROJECT_ID ?? e.CI_PROJECT_PATH,
  },
  {
    // Per workflow: run numbers restart in every workflow file.
    system: "github",
    detect: (e) => e.GITHUB_ACTIONS === "true",
    number: "GITHUB_RUN_NUMBER",
    scope: (e) => e.GITHUB_REPOSITORY && `${e.GITHUB_REPOSITORY}:${githubWorkflow(e) ?? ""}`,
  },
  {
    system: "woodpecker",
    detect: (e) => e.CI === "woodpecker",
    number: "CI_PIPELINE_NUMBER",
    scope: (e) => e.CI_REPO,
  },
  {
    system: "jenkins",
    detect: (e) => !!e.JENKINS_URL,
    number: "BUILD_NUMBER",
    scope: (e) => e.JOB_NAME,
  },
  {
    // BUILD_BUILDID counts across the organization (BUILD_BUILDNUMBER is a name, not a number).
    system: "azure",
    detect: (e) => e.TF_BUILD === "True",
    number: "BUILD_BUILDID",
    scope: (e) => e.SYSTEM_COLLECTIONURI,
  },
  {
    system: "circleci",
    detect: (e) => e.CIRCLECI === "true",
    number: "CIRCLE_BUILD_NUM",
    scope: (e) =>
      e.CIRCLE_PROJECT_REPONAME &&
      `${e.CIRCLE_PROJECT_USERNAME ?? ""}/${e.CIRCLE_PROJECT_REPONAME}`,
  },
  {
    system: "buildkite",
    detect: (e) => e.BUILDKITE === "true",
    number: "BUILDKITE_BUILD_NUMBER",
    scope: (e) =>
      e.BUILDKITE_PIPELINE_SLUG &&
      `${e.BUILDKITE_ORGANIZATION_SLUG ?? ""}/${e.BUILDKITE_PIPELINE_SLUG}`,
  },
  {
    system: "bitbucket",
    detect: (e) => !!e.BITBUCKET_BUILD_NUMBER,
    number: "BITBUCKET_BUILD_NUMBER",
    scope: (e) => e.BITBUCKET_REPO_FULL_NAME,
  },
  {
    system: "drone",
    detect: (e) => e.DRONE === "true",
    number: "DRONE_BUILD_NUMBER",
    scope: (e) => e.DRONE_REPO,
  },
];

/**
 * The pipeline number of the CI system running us, as a queue order (`key` and its `scope`).
 *
 * @param env The environment to read.
 * @returns `undefined` outside a known CI system, or when its number is missing or not a
 *   whole number.
 */
export function pipelineOrder(env: Env): Pick<Order, "key" | "scope"> | undefined {
  for (const s of SERIES) {
    if (!s.detect(env)) continue;
    const text = env[s.number] ?? "";
    const scope = s.scope(env);
    const key = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(key) || !scope) return undefined;
    return { key, scope: `${s.system}:${scope}`.slice(0, 128) };
  }
  return undefined;
}
