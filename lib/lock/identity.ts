/**
 * Who holds the lock: the holder identity and the annotations waiters read.
 * @module
 */

import { redactUrls } from "../redact.ts";
import { PREFIX } from "./names.ts";

export const Annotation = {
  ciJobUrl: `${PREFIX}ci-job-url`,
  user: `${PREFIX}user`,
  host: `${PREFIX}host`,
  command: `${PREFIX}command`,
  startedAt: `${PREFIX}started-at`,
  /** A holder's own release: older helm-locks take it at once, wait out a vanished holder's. */
  released: `${PREFIX}released`,
} as const;

function hostName(env: Record<string, string | undefined>): string {
  try {
    return Deno.hostname();
  } catch {
    return env.HOSTNAME ?? env.COMPUTERNAME ?? "unknown-host";
  }
}

/**
 * A holder identity unique per process, `<host>-<pid>-<random>`: 64 random bits keep apart
 * jobs that share a host name and a pid, as containers started in the same second often do.
 */
export function holderIdentity(): string {
  const random = crypto.getRandomValues(new Uint8Array(8));
  const hex = Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hostName(Deno.env.toObject())}-${Deno.pid}-${hex}`;
}

/** The URL of the CI job running us, by docs/ci.md's table (`CI_JOB_URL` first). */
function ciJobUrl(env: Record<string, string | undefined>): string | undefined {
  const v = (name: string) => env[name] || undefined;
  if (v("CI_JOB_URL")) return v("CI_JOB_URL");
  const [runId, repository] = [v("GITHUB_RUN_ID"), v("GITHUB_REPOSITORY")];
  if (runId && repository) {
    const server = trimSlashes(v("GITHUB_SERVER_URL") ?? "https://github.com");
    const run = `${server}/${repository}/actions/runs/${runId}`;
    const attempt = v("GITHUB_RUN_ATTEMPT");
    return attempt ? `${run}/attempts/${attempt}` : run;
  }
  const collection = v("SYSTEM_COLLECTIONURI") ?? v("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI");
  const [project, buildId] = [v("SYSTEM_TEAMPROJECT"), v("BUILD_BUILDID")];
  if (collection && project && buildId) {
    const jobId = v("SYSTEM_JOBID");
    return `${trimSlashes(collection)}/${encodeURIComponent(project)}/_build/results?buildId=` +
      `${encodeURIComponent(buildId)}${jobId ? `&view=logs&j=${encodeURIComponent(jobId)}` : ""}`;
  }
  if (v("CIRCLE_BUILD_URL")) return v("CIRCLE_BUILD_URL");
  const buildkite = v("BUILDKITE_BUILD_URL");
  if (buildkite) {
    const job = v("BUILDKITE_JOB_ID");
    return job ? `${buildkite}#${job}` : buildkite;
  }
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
  // GitLab also sets CI_PIPELINE_URL: only Woodpecker's counts.
  if (v("CI") === "woodpecker") {
    const woodpecker = v("CI_STEP_URL") ?? v("CI_PIPELINE_URL");
    if (woodpecker) return woodpecker;
  }
  return v("DRONE_BUILD_LINK") ?? v("BUILD_URL"); // Drone, Jenkins
}

// A loop, not /\/+$/: that pattern retries from every "/" of a long run, quadratic.
function trimSlashes(url: string): string {
  let end = url.length;
  while (end > 0 && url[end - 1] === "/") end--;
  return url.slice(0, end);
}

/**
 * The annotations helm-lock writes on its Lease (`started-at` comes with the lock), every URL's
 * user info hidden: anyone who may read Leases reads them (docs/ci.md). `env` defaults to
 * `Deno.env.toObject()`.
 */
export function lockAnnotations(
  options: { command: string; env?: Record<string, string | undefined> },
): Record<string, string> {
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
  // Kubernetes caps an object's annotations at 256 KiB; a command line need not come close.
  annotations[Annotation.command] = options.command.length > 1024
    ? `${options.command.slice(0, 1023)}…`
    : options.command;
  for (const [key, value] of Object.entries(annotations)) annotations[key] = redactUrls(value);
  return annotations;
}
