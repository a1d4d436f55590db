/**
 * What a failed Kubernetes API request means for helm-lock: its exit code and message.
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import { redactUrls } from "../redact.ts";

/** What a failed request was trying to do, for {@linkcode apiError}. */
export interface ApiAction {
  /** The Kubernetes verb: `get`, `create`, `update`, `delete`, `watch`. */
  verb: string;
  /** The resource, plural: `leases`. */
  resource: string;
  namespace: string;
  user: string;
  server: string;
}

/** Why a request got no answer: a KubeNetworkError's words, else the innermost cause's. */
function networkReason(err: unknown): string {
  let innermost: unknown = err;
  for (let depth = 0; depth < 8; depth++) {
    if (innermost instanceof Error && innermost.name === "KubeNetworkError") break;
    const cause = (innermost as { cause?: unknown } | undefined)?.cause;
    if (!cause) break;
    innermost = cause;
  }
  if (innermost instanceof DOMException && innermost.name === "TimeoutError") {
    // Ours say "no answer within N s"; others (AbortSignal.timeout) only that it timed out.
    return innermost.message.startsWith("no answer") ? innermost.message : "no answer in time";
  }
  const message = innermost instanceof Error ? innermost.message : String(innermost);
  return redactUrls(message.split("\n")[0] || "unknown error");
}

/** An HTTP answer: `rest.ts`'s ApiStatusError, or client-node's ApiException (same shape). */
interface StatusError {
  code: number;
  body?: unknown;
}

function isStatusError(err: unknown): err is StatusError {
  // A DOMException (a timeout, an abort) has a numeric legacy `code` too: not an answer.
  return err instanceof Error && !(err instanceof DOMException) &&
    typeof (err as { code?: unknown }).code === "number";
}

/** The `message` of the `Status` in the answer's body (an object, or its JSON text). */
function statusMessage({ body }: StatusError): string | undefined {
  try {
    if (typeof body === "string") body = JSON.parse(body);
  } catch { /* not JSON */ }
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : undefined;
}

/** The HTTP status of an API answer; `undefined` for no answer (a network error, a timeout). */
export function statusCode(err: unknown): number | undefined {
  return isStatusError(err) ? err.code : undefined;
}

/** Whether `err` is an API response with the given HTTP status. */
export function isStatus(err: unknown, code: number): boolean {
  return statusCode(err) === code;
}

/**
 * Maps a client error to a {@linkcode HelmLockError}: 401/403 are `Forbidden`, no answer at all
 * is `Unreachable`, any other answer `Internal`; a `HelmLockError` passes through unchanged.
 */
export function apiError(err: unknown, what: ApiAction): HelmLockError {
  if (err instanceof HelmLockError) return err;
  const cannot = `Cannot ${what.verb} ${what.resource} in namespace "${what.namespace}"`;
  const server = redactUrls(what.server);
  const error = (code: ExitCode, message: string) =>
    new HelmLockError(code, message, { cause: err });
  if (!isStatusError(err)) {
    return error(
      ExitCode.Unreachable,
      `Cannot reach the Kubernetes API server ${server}: ${networkReason(err)}`,
    );
  }
  const detail = statusMessage(err);
  // The server knows who we really are (token subject, impersonation); prefer its name.
  if (err.code === 403) {
    const user = detail?.match(/User "([^"]*)"/)?.[1] ?? what.user;
    return error(ExitCode.Forbidden, `${cannot} as user "${user}": forbidden`);
  }
  if (err.code === 401) {
    return error(
      ExitCode.Forbidden,
      `${cannot} as user "${what.user}": unauthorized (the API server ${server} rejected the credentials)`,
    );
  }
  return error(
    ExitCode.Internal,
    `${cannot}: the API server ${server} answered ${err.code}${detail ? ` (${detail})` : ""}`,
  );
}
