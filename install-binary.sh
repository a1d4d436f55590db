#!/bin/sh
# Install and update hook of the helm-lock Helm plugin (plugin.yaml runs it; docs/install.md).
#
# Puts bin/helm-lock into the plugin directory: the release archive for this plugin's own
# version (from plugin.yaml, never "latest"), verified against the release's checksums.txt.
# When no binary can be had and deno is on PATH, a launcher that runs main.ts with deno.
#
# Usage: install-binary.sh [-u]
#   -u   update: replace bin/helm-lock even when the installed one reports this version
#
# Environment:
#   HELM_PLUGIN_DIR             plugin directory (helm sets it; default: this script's directory)
#   HELM_LOCK_DOWNLOAD_URL      base URL of the release files (a mirror); default
#                               https://github.com/helm-lock/helm-lock/releases/download/v<version>
#   HELM_LOCK_ARCHIVE           install this local archive instead of downloading (air-gapped)
#   HELM_LOCK_CHECKSUMS         a local checksums.txt to verify against instead of the mirror's
#                               (or, for HELM_LOCK_ARCHIVE, the one beside the archive). A local
#                               archive with neither is installed unverified, with a warning:
#                               the user picked a file on their own disk.
#   HELM_LOCK_FROM_SOURCE=1     skip the download, install the deno launcher
#   HELM_LOCK_DOWNLOAD_RETRIES  retries per download on transient errors (default 5)
#   SKIP_BIN_INSTALL=1          install nothing
set -eu

readonly repo_url=https://github.com/helm-lock/helm-lock

log() { printf 'helm-lock: %s\n' "$*" >&2; }
die() {
  printf 'helm-lock: error: %s\n' "$*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

update=0
for arg in "$@"; do
  case $arg in
    -u) update=1 ;;
    *) die "Unknown argument '$arg': expected none or -u" ;;
  esac
done

if [ "${SKIP_BIN_INSTALL:-}" = 1 ]; then
  log "SKIP_BIN_INSTALL=1: not installing bin/helm-lock"
  exit 0
fi

plugin_dir=${HELM_PLUGIN_DIR:-$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)}
[ -f "$plugin_dir/plugin.yaml" ] || die "Cannot find plugin.yaml in '$plugin_dir': set HELM_PLUGIN_DIR"
version=$(sed -n 's/^version:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\).*$/\1/p' "$plugin_dir/plugin.yaml")
[ -n "$version" ] || die "Cannot read 'version:' from $plugin_dir/plugin.yaml"
bin_dir=$plugin_dir/bin
retries=${HELM_LOCK_DOWNLOAD_RETRIES:-5}

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t helm-lock)
staged=
cleanup() {
  rm -rf "$tmp"
  if [ -n "$staged" ]; then rm -f "$staged"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

detect_platform() {
  case $(uname -s) in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW* | MSYS* | CYGWIN*) os=windows ;;
    *) os= ;;
  esac
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch= ;;
  esac
  ext=tar.gz
  if [ "$os" = windows ]; then ext=zip; fi
}

# Whether the installed bin/helm-lock already is this version (then a plain install keeps it).
installed_is_current() {
  for candidate in "$bin_dir/helm-lock" "$bin_dir/helm-lock.exe"; do
    if [ -x "$candidate" ] && [ "$("$candidate" --version 2>/dev/null || true)" = "helm-lock $version" ]; then
      return 0
    fi
  done
  return 1
}

# download URL FILE: curl or wget, retrying transient failures but not HTTP errors such as 404.
download() {
  if have curl; then
    curl --fail --silent --show-error --location --retry "$retries" --retry-delay 1 \
      --retry-connrefused --connect-timeout 10 --max-time 600 -o "$2" "$1"
  elif have wget && wget --help 2>&1 | grep -q -e --retry-on-http-error; then
    # GNU wget >= 1.19.1 retries these itself, and not a 404.
    wget -q -T 30 --tries=$((retries + 1)) --waitretry=1 --retry-connrefused \
      --retry-on-http-error=408,429,500,502,503,504 -O "$2" "$1"
  elif have wget; then
    # BusyBox or an old wget: its exit code does not tell a 404 from a 503, so retry any failure.
    attempt=0
    until wget -q -T 30 -O "$2" "$1"; do
      [ "$attempt" -lt "$retries" ] || return 1
      attempt=$((attempt + 1))
      sleep 1
    done
  else
    log "neither curl nor wget is installed"
    return 1
  fi
}

sha256_of() {
  if have sha256sum; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif have shasum; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  elif have openssl; then
    openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
  else
    return 1
  fi
}

# verify ARCHIVE NAME CHECKSUMS SOURCE: refuse unless CHECKSUMS lists NAME with ARCHIVE's SHA-256.
verify() {
  expected=$(awk -v f="$2" '$2 == f || $2 == "*" f { print $1; exit }' "$3" | tr 'A-F' 'a-f')
  [ -n "$expected" ] || die "Checksum for $2 not found in $4: refusing to install an unverified binary"
  actual=$(sha256_of "$1") || die "Cannot verify $2: none of sha256sum, shasum or openssl is installed"
  actual=$(printf '%s' "$actual" | tr 'A-F' 'a-f')
  if [ "$actual" != "$expected" ]; then
    die "Checksum mismatch for $2: expected sha256 $expected (from $4), found $actual: refusing to install"
  fi
  log "verified sha256 of $2"
}

# install_archive ARCHIVE: extract and move the binary into bin/ (atomically: rename in bin/).
install_archive() {
  mkdir "$tmp/extract"
  case $1 in
    *.zip) unzip -q "$1" -d "$tmp/extract" || die "Cannot extract $1 with unzip" ;;
    *) tar -xzf "$1" -C "$tmp/extract" || die "Cannot extract $1 with tar" ;;
  esac
  for name in helm-lock helm-lock.exe; do
    if [ -f "$tmp/extract/$name" ]; then
      mkdir -p "$bin_dir"
      staged=$bin_dir/.$name.$$
      cp "$tmp/extract/$name" "$staged"
      chmod 755 "$staged"
      mv -f "$staged" "$bin_dir/$name"
      staged=
      log "installed helm-lock $version to $bin_dir/$name"
      return 0
    fi
  done
  die "Archive $1 holds no helm-lock or helm-lock.exe at its top level"
}

# A launcher, not a copy: it finds main.ts next to itself at run time, so the plugin directory
# may move, and it works as well when shipped inside an archive.
install_launcher() {
  [ -f "$plugin_dir/main.ts" ] || die "Cannot install the deno launcher: $plugin_dir/main.ts is missing"
  deno_path=$(command -v deno 2>/dev/null || true)
  [ -n "$deno_path" ] || die "Cannot install the deno launcher: deno is not on PATH (https://deno.com)"
  mkdir -p "$bin_dir"
  staged=$bin_dir/.helm-lock.$$
  cat >"$staged" <<EOF
#!/bin/sh
# helm-lock launcher written by install-binary.sh: runs the plugin's main.ts with deno.
self=\$0
while [ -L "\$self" ]; do
  link=\$(readlink "\$self")
  case \$link in
    /*) self=\$link ;;
    *) self=\$(dirname -- "\$self")/\$link ;;
  esac
done
plugin_dir=\$(CDPATH='' cd -- "\$(dirname -- "\$self")/.." && pwd) || exit 1
deno='$deno_path'
[ -x "\$deno" ] || deno=deno
export DENO_NO_UPDATE_CHECK=1 # no look-up of the download host on every run
exec "\$deno" run --quiet --no-prompt --allow-env --allow-run --allow-net --allow-read \\
  --allow-sys --config "\$plugin_dir/deno.json" "\$plugin_dir/main.ts" "\$@"
EOF
  chmod 755 "$staged"
  mv -f "$staged" "$bin_dir/helm-lock"
  staged=
  log "installed a launcher that runs $plugin_dir/main.ts with $deno_path to $bin_dir/helm-lock"
}

# Called when no release binary can be had: deno is the last resort, not an error path.
fall_back_to_source() {
  if have deno; then
    log "$1; deno is on PATH: installing the launcher instead"
    install_launcher
    exit 0
  fi
  die "$1, and deno is not on PATH: set HELM_LOCK_DOWNLOAD_URL to a mirror, HELM_LOCK_ARCHIVE to a local archive, or install deno"
}

if [ "$update" = 0 ] && installed_is_current; then
  log "helm-lock $version is already installed in $bin_dir (run install-binary.sh -u to replace it)"
  exit 0
fi

if [ "${HELM_LOCK_FROM_SOURCE:-}" = 1 ]; then
  install_launcher
  exit 0
fi

if [ -n "${HELM_LOCK_ARCHIVE:-}" ]; then
  [ -f "$HELM_LOCK_ARCHIVE" ] || die "HELM_LOCK_ARCHIVE '$HELM_LOCK_ARCHIVE' is not a file"
  archive_name=$(basename -- "$HELM_LOCK_ARCHIVE")
  checksums=${HELM_LOCK_CHECKSUMS:-$(dirname -- "$HELM_LOCK_ARCHIVE")/checksums.txt}
  if [ -f "$checksums" ]; then
    verify "$HELM_LOCK_ARCHIVE" "$archive_name" "$checksums" "$checksums"
  elif [ -n "${HELM_LOCK_CHECKSUMS:-}" ]; then
    die "HELM_LOCK_CHECKSUMS '$HELM_LOCK_CHECKSUMS' is not a file"
  else
    log "warning: no checksums.txt beside $HELM_LOCK_ARCHIVE and HELM_LOCK_CHECKSUMS is unset: installing it unverified"
  fi
  install_archive "$HELM_LOCK_ARCHIVE"
  exit 0
fi

detect_platform
if [ -z "$os" ] || [ -z "$arch" ]; then
  fall_back_to_source "No helm-lock release binary for $(uname -s) $(uname -m)"
fi
base_url=${HELM_LOCK_DOWNLOAD_URL:-$repo_url/releases/download/v$version}
base_url=${base_url%/}
archive_name=helm-lock-$version-$os-$arch.$ext
log "downloading $base_url/$archive_name"
if ! download "$base_url/$archive_name" "$tmp/$archive_name"; then
  fall_back_to_source "Cannot download $base_url/$archive_name"
fi
# From here on a failure is fatal, never a fallback: a bad checksum may mean a tampered mirror.
if [ -n "${HELM_LOCK_CHECKSUMS:-}" ]; then
  # A checksums.txt from a source the user trusts more than the mirror.
  [ -f "$HELM_LOCK_CHECKSUMS" ] || die "HELM_LOCK_CHECKSUMS '$HELM_LOCK_CHECKSUMS' is not a file"
  verify "$tmp/$archive_name" "$archive_name" "$HELM_LOCK_CHECKSUMS" "$HELM_LOCK_CHECKSUMS"
else
  download "$base_url/checksums.txt" "$tmp/checksums.txt" ||
    die "Cannot download $base_url/checksums.txt: refusing to install an unverified binary"
  verify "$tmp/$archive_name" "$archive_name" "$tmp/checksums.txt" "$base_url/checksums.txt"
fi
install_archive "$tmp/$archive_name"
