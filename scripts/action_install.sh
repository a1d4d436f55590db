#!/bin/sh
# The install step of the GitHub Action (action.yml): installs helm-lock $HELM_LOCK_VERSION with
# install-binary.sh (checksum-verified, never a deno fallback) into
# $RUNNER_TEMP/helm-lock-<version>/bin and puts that directory on the job's PATH.
#
# Environment (action.yml maps its inputs onto these):
#   HELM_LOCK_VERSION        the release to install (required; no "latest")
#   HELM_LOCK_PINNED_SUMS    lines of the release's checksums.txt to verify against instead of
#                            downloading the mirror's (optional)
#   HELM_LOCK_DOWNLOAD_URL   a mirror of the release files (optional)
#   RUNNER_TEMP, GITHUB_PATH, GITHUB_OUTPUT, GITHUB_ACTION_PATH   set by the runner
set -eu

die() {
  printf 'helm-lock: error: %s\n' "$*" >&2
  exit 1
}

[ -n "${HELM_LOCK_VERSION:-}" ] || die "Cannot install helm-lock: expected the action input 'version' (such as 0.1.0), found none"
version=${HELM_LOCK_VERSION#v}
here=${GITHUB_ACTION_PATH:-$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)}
dir=${RUNNER_TEMP:?RUNNER_TEMP is not set}/helm-lock-$version

HELM_LOCK_BIN_DIR=$dir/bin
HELM_LOCK_FROM_SOURCE=0
export HELM_LOCK_BIN_DIR HELM_LOCK_FROM_SOURCE
if [ -n "${HELM_LOCK_PINNED_SUMS:-}" ]; then
  mkdir -p "$dir"
  printf '%s\n' "$HELM_LOCK_PINNED_SUMS" >"$dir/checksums.txt"
  HELM_LOCK_CHECKSUMS=$dir/checksums.txt
  export HELM_LOCK_CHECKSUMS
fi
sh "$here/install-binary.sh" -u

printf '%s\n' "$HELM_LOCK_BIN_DIR" >>"${GITHUB_PATH:?GITHUB_PATH is not set}"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  printf 'path=%s\n' "$HELM_LOCK_BIN_DIR" >>"$GITHUB_OUTPUT"
fi
