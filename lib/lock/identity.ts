/**
 * Who holds the lock: the holder identity written to the Lease and the annotations that
 * tell waiters which job holds it, for how long, and where to look.
 *
 * @module
 */

import { redactUrls } from "../redact.ts";

/** Prefix of every annotation helm-lock writes on its Lease. */
export const ANNOTATION_PREFIX = "helm-lock.dev/";

/** Annotation keys helm-lock writes on its Lease. */
export const Annotation = {
  ciJobUrl: `${ANNOTATION_PREFIX}ci-job-url`,
  user: `${ANNOTATION_PREFIX}user`,
  host: `${ANNOTATION_PREFIX}host`,
  command: `${ANNOTATION_PREFIX}command`,
  startedAt: `${ANNOTATION_PREFIX}started-at`,
  /**
   * Written with the cleared holder by a holder's own release: waiters take such a Lease at
   * once, but wait out one whose holder vanished without it (`wait.ts`).
   */
  released: `${ANNOTATION_PREFIX}released`,
} as const;

/** Kubernetes caps all annotations of an object at 256 KiB; a command line need not come close. */
const MAX_COMMAND_LENGTH = 1024;

/**
 * The host name to show: the pod name in Kubernetes (`HOSTNAME` is the pod name there),
 * else the machine's host name.
 */
function hostName(env: Record<string, string | undefined>): string {
  try {
    return Deno.hostname();
  } catch {
    return env.HOSTNAME ?? env.COMPUTERNAME ?? "unknown-host";
  }
}

/**
 * A holder identity unique per process: `<host>-<pid>-<random>`.
 *
 * The random part (64 bits) keeps two jobs apart even when they share a host name and a pid,
 * as containers started in the same second often do — the fault of identities built from
 * the host and the start time.
 *
 * @returns The identity, for example `runner-7-1234-9f86d081884c7d65`.
 */
export function holderIdentity(): string {
  const random = crypto.getRandomValues(new Uint8Array(8));
  const hex = Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hostName(Deno.env.toObject())}-${Deno.pid}-${hex}`;
}

/**
 * The URL of the CI job running this process, from the variables its CI system sets (each
 * system's documented ones; docs/ci.md has the table). `CI_JOB_URL` comes first: GitLab's, and
 * the variable any other system (Tekton, which sets none; GitHub, for a job-level link) can be
 * given the URL in.
 *
 * @param env The environment to read.
 * @returns The URL, or `undefined` outside a known CI system.
 */
export function ciJobUrl(env: Record<string, string | undefined>): string | undefined {
  const v = (name: string) => env[name] || undefined;
  // GitLab CI/CD: predefined variable CI_JOB_URL (docs.gitlab.com/ci/variables/predefined_variables).
  const gitlab = v("CI_JOB_URL");
  if (gitlab) return gitlab;
  // GitHub Actions (docs.github.com/actions/reference/variables-reference): the run attempt.
  // The job's id (`job.check_run_id`) is an expression context, in no default variable.
  const [runId, repository] = [v("GITHUB_RUN_ID"), v("GITHUB_REPOSITORY")];
  if (runId && repository) {
    const server = trimSlashes(v("GITHUB_SERVER_URL") ?? "https://github.com");
    const run = `${server}/${repository}/actions/runs/${runId}`;
    const attempt = v("GITHUB_RUN_ATTEMPT");
    return attempt ? `${run}/attempts/${attempt}` : run;
  }
  // Azure Pipelines (learn.microsoft.com/azure/devops/pipelines/build/variables): the build's
  // results page, at the job's log when System.JobId is set.
  const collection = v("SYSTEM_COLLECTIONURI") ?? v("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI");
  const [project, buildId] = [v("SYSTEM_TEAMPROJECT"), v("BUILD_BUILDID")];
  if (collection && project && buildId) {
    const jobId = v("SYSTEM_JOBID");
    return `${trimSlashes(collection)}/${encodeURIComponent(project)}/_build/results?buildId=` +
      `${encodeURIComponent(buildId)}${jobId ? `&view=logs&j=${encodeURIComponent(jobId)}` : ""}`;
  }
  // CircleCI (circleci.com/docs/variables): CIRCLE_BUILD_URL is the job's page.
  const circle = v("CIRCLE_BUILD_URL");
  if (circle) return circle;
  // Buildkite (buildkite.com/docs/pipelines/environment_variables): the build, at the job.
  const buildkite = v("BUILDKITE_BUILD_URL");
  if (buildkite) {
    const job = v("BUILDKITE_JOB_ID");
    return job ? `${buildkite}#${job}` : buildkite;
  }
  // Bitbucket Pipelines (support.atlassian.com/bitbucket-cloud/docs/variables-and-secrets):
  // no URL variable; the pipeline's page from its workspace, repository and build number.
  const [workspace, slug, build] = [
    v("BITBUCKET_WORKSPACE"),
    v("BITBUCKET_REPO_SLUG"),
    v("BITBUCKET_BUILD_NUMBER"),
  ];
  if (workspace && slug && build) {
    const step = v("BITBUCKET_STEP_UUID");
    return `https://bitbucket.org/${workspace}/${slug}/pipelines/results/${build}` +
      (step ? `/steps/${encodeURIComponent(step)}` : "");
  }
  // Woodpecker (woodpecker-ci.org/docs/usage/environment): CI=woodpecker; the step, else the
  // pipeline (GitLab also sets CI_PIPELINE_URL, hence the check).
  if (v("CI") === "woodpecker") {
    const woodpecker = v("CI_STEP_URL") ?? v("CI_PIPELINE_URL");
    if (woodpecker) return woodpecker;
  }
  // Drone (docs.drone.io/pipeline/environment/reference/drone-build-link).
  const drone = v("DRONE_BUILD_LINK");
  if (drone) return drone;
  // Jenkins (jenkins.io/doc/book/pipeline/jenkinsfile/#using-environment-variables): BUILD_URL.
  return v("BUILD_URL");
}

// A loop, not /\/+$/: that pattern retries from every "/" of a long run, quadratic.
function trimSlashes(url: string): string {
  let end = url.length;
  while (end > 0 && url[end - 1] === "/") end--;
  return url.slice(0, end);
}

/** Options for {@linkcode lockAnnotations}. */
export interface LockAnnotationsOptions {
  /** The helm command line, with secrets already redacted. */
  command: string;
  /**
   * The environment to read the CI job and user from.
   * @default {Deno.env.toObject()}
   */
  env?: Record<string, string | undefined>;
}

/**
 * The annotations helm-lock writes on its Lease, under `helm-lock.dev/`: `ci-job-url`
 * (only when known), `user`, `host` and `command`. `started-at` is added by the lock itself
 * at the moment it is taken (`holderLease()`), not when waiting began.
 *
 * Anyone who may read Leases in the namespace reads these, so the user info of every URL in
 * them is hidden (`CI_JOB_URL=https://ci:pass@ci.example.com/job/7` is stored as
 * `https://***@ci.example.com/job/7`), whatever variable it came from.
 *
 * @param options What to record.
 * @returns The annotations, ready for `metadata.annotations`.
 */
export function lockAnnotations(options: LockAnnotationsOptions): Record<string, string> {
  const env = options.env ?? Deno.env.toObject();
  const annotations: Record<string, string> = {};
  const url = ciJobUrl(env);
  if (url) annotations[Annotation.ciJobUrl] = url;
  // GITLAB_USER_LOGIN and GITHUB_ACTOR name the person who started the pipeline, which is
  // what a waiting colleague wants to know; the OS user of a runner is always the same.
  const user = env.GITLAB_USER_LOGIN ?? env.GITHUB_ACTOR ?? env.BUILD_USER_ID ?? env.USER ??
    env.USERNAME ?? env.LOGNAME;
  if (user) annotations[Annotation.user] = user;
  annotations[Annotation.host] = hostName(env);
  annotations[Annotation.command] = options.command.length > MAX_COMMAND_LENGTH
    ? `${options.command.slice(0, MAX_COMMAND_LENGTH - 1)}…`
    : options.command;
  for (const [key, value] of Object.entries(annotations)) annotations[key] = redactUrls(value);
  return annotations;
}
