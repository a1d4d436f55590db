#!/bin/sh
# Install and update hook of the helm-lock Helm plugin (plugin.yaml runs it; docs/install.md).
#
# Puts bin/helm-lock into the plugin directory: the release archive for this plugin's own
# version (from plugin.yaml, never "latest"), verified against the release's checksums.txt.
# On Linux without glibc (musl, as on Alpine) that is the -musl archive, which brings glibc's
# loader in bin/helm-lock.runtime/. When no binary can be had and deno is on PATH, a launcher
# that runs main.ts with deno. Whatever it installs must answer --version before it replaces
# what bin/ held. The GitHub Action (action.yml) runs it too, outside any plugin.
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
#   HELM_LOCK_FROM_SOURCE=1     skip the download, install the deno launcher (always: also
#                               over a binary of this version); =0: never fall back to it
#   HELM_LOCK_LIBC=musl|gnu     which Linux archive to install (default: musl when the system
#                               has no glibc: its ldd is musl's, or glibc's loader is missing)
#   HELM_LOCK_VERSION           install this version instead of plugin.yaml's (action.yml)
#   HELM_LOCK_BIN_DIR           install into this directory instead of <plugin dir>/bin
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
if [ -n "${HELM_LOCK_VERSION:-}" ]; then
  version=${HELM_LOCK_VERSION#v}
  case $version in
    *[!0-9A-Za-z.+-]* | [!0-9]*) die "Cannot install helm-lock version '$HELM_LOCK_VERSION': expected a release version such as 0.1.0" ;;
  esac
else
  [ -f "$plugin_dir/plugin.yaml" ] || die "Cannot find plugin.yaml in '$plugin_dir': set HELM_PLUGIN_DIR"
  version=$(sed -n 's/^version:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\).*$/\1/p' "$plugin_dir/plugin.yaml")
  [ -n "$version" ] || die "Cannot read 'version:' from $plugin_dir/plugin.yaml"
fi
bin_dir=${HELM_LOCK_BIN_DIR:-$plugin_dir/bin}
retries=${HELM_LOCK_DOWNLOAD_RETRIES:-5}

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t helm-lock)
staged=
cleanup() {
  rm -rf "$tmp"
  if [ -n "$staged" ]; then rm -rf "$staged"; fi
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
  libc=
  if [ "$os" = linux ] && [ -n "$arch" ] && without_glibc; then libc=-musl; fi
}

# Where glibc's dynamic loader lives on this architecture (every glibc binary names it).
glibc_loader() {
  case ${arch:-} in
    arm64) echo /lib/ld-linux-aarch64.so.1 ;;
    *) echo /lib64/ld-linux-x86-64.so.2 ;;
  esac
}

# Whether this Linux lacks glibc (musl, as on Alpine): the glibc build cannot start there, the
# -musl archive (which brings glibc's loader and libraries) can. gcompat provides a loader file
# but not enough of glibc, so a musl ldd wins over the loader's presence.
without_glibc() {
  case ${HELM_LOCK_LIBC:-} in
    musl) return 0 ;;
    gnu | glibc) return 1 ;;
    '') ;;
    *) die "Unknown HELM_LOCK_LIBC '$HELM_LOCK_LIBC': expected musl or gnu" ;;
  esac
  if (ldd --version 2>&1 || true) | grep -qi musl; then return 0; fi
  [ ! -e "$(glibc_loader)" ]
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

# bounded SECONDS COMMAND...: runs COMMAND, killed after SECONDS where timeout(1) exists.
bounded() {
  secs=$1
  shift
  if have timeout; then timeout "$secs" "$@"; else "$@"; fi
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
    # The whole download is bounded by timeout(1), not wget -T: Debian's busybox-static 1.35
    # wget crashes on -T.
    attempt=0
    until bounded 600 wget -q -O "$2" "$1"; do
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

# What to tell a user whose system cannot start the staged helm-lock in STAGE.
start_hint() {
  if [ -f "$1/helm-lock.runtime/helm-lock" ]; then
    if [ -z "$(find "$1/helm-lock.runtime" -name 'ld-linux*' 2>/dev/null)" ]; then
      echo "the archive's glibc loader bundle (helm-lock.runtime/ld-linux-*) is missing: install an intact helm-lock-$version-linux-${arch:-amd64}-musl.tar.gz"
      return
    fi
    echo "the glibc loader shipped in helm-lock.runtime/ does not run here: report it at $repo_url/issues with the output above"
    return
  fi
  if [ "$(uname -s)" = Linux ] && [ ! -e "$(glibc_loader)" ]; then
    echo "this system has no glibc (no $(glibc_loader); musl libc, as on Alpine) and the archive brings none: install helm-lock-$version-linux-${arch:-amd64}-musl.tar.gz (HELM_LOCK_LIBC=musl picks it), or HELM_LOCK_FROM_SOURCE=1 with deno installed"
    return
  fi
  echo "run it by hand to see why, or set HELM_LOCK_FROM_SOURCE=1 to run helm-lock with deno instead"
}

# check_starts STAGE NAME: the staged binary must start and report this version, else nothing in
# bin/ is replaced and the user learns what the system lacks.
check_starts() {
  if out=$("$1/$2" --version 2>&1); then
    [ "$out" = "helm-lock $version" ] && return 0
    found="it printed: $out"
  else
    found="exit $?: $(printf '%s\n' "$out" | head -n 3 | tr '\n' ' ')"
  fi
  die "Cannot start helm-lock on this system: expected 'helm-lock $version' from '$2 --version', found $found: $(start_hint "$1")"
}

# place STAGE NAME: moves a checked stage into bin/ (each file by rename, so a running helm-lock
# keeps its inode), removing whatever an earlier install left under those names.
place() {
  if [ -d "$1/helm-lock.runtime" ]; then
    rm -rf "$bin_dir/helm-lock.runtime"
    mv "$1/helm-lock.runtime" "$bin_dir/helm-lock.runtime"
  else
    rm -rf "$bin_dir/helm-lock.runtime"
  fi
  if [ -L "$bin_dir/$2" ]; then
    rm -f "$bin_dir/$2"
  elif [ -d "$bin_dir/$2" ]; then
    rm -rf "${bin_dir:?}/$2"
  fi
  mv -f "$1/$2" "$bin_dir/$2"
  rm -rf "$1"
  staged=
}

# new_stage: an empty directory beside bin/ (same file system, so place() only renames; and
# one level below the plugin directory, as bin/ is, so a launcher finds main.ts from there).
new_stage() {
  mkdir -p "$bin_dir"
  staged=$(dirname -- "$bin_dir")/.helm-lock-install.$$
  rm -rf "$staged"
  mkdir "$staged"
}

# install_archive ARCHIVE: extract into a stage beside bin/, check it starts, then move it in place.
install_archive() {
  new_stage
  case $1 in
    *.zip) unzip -q "$1" -d "$staged" || die "Cannot extract $1 with unzip" ;;
    *) tar -xzf "$1" -C "$staged" || die "Cannot extract $1 with tar" ;;
  esac
  for name in helm-lock helm-lock.exe; do
    if [ -f "$staged/$name" ]; then
      chmod 755 "$staged/$name"
      if [ -f "$staged/helm-lock.runtime/helm-lock" ]; then chmod 755 "$staged/helm-lock.runtime/helm-lock"; fi
      check_starts "$staged" "$name"
      place "$staged" "$name"
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
  new_stage
  cat >"$staged/helm-lock" <<EOF
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
# --allow-write only for helm's client-go cache of a fenced run, in the temp directory.
exec "\$deno" run --quiet --no-prompt --allow-env --allow-run --allow-net --allow-read \\
  --allow-sys --allow-write="\${TMPDIR:-/tmp}" \\
  --config "\$plugin_dir/deno.json" "\$plugin_dir/main.ts" "\$@"
EOF
  chmod 755 "$staged/helm-lock"
  check_starts "$staged" helm-lock
  place "$staged" helm-lock
  log "installed a launcher that runs $plugin_dir/main.ts with $deno_path to $bin_dir/helm-lock"
}

# Called when no release binary can be had: deno is the last resort, not an error path.
fall_back_to_source() {
  if [ "${HELM_LOCK_FROM_SOURCE:-}" = 0 ]; then
    die "$1: set HELM_LOCK_DOWNLOAD_URL to a mirror or HELM_LOCK_ARCHIVE to a local archive"
  fi
  if have deno && [ -f "$plugin_dir/main.ts" ]; then
    log "$1; deno is on PATH: installing the launcher instead"
    install_launcher
    exit 0
  fi
  die "$1, and deno is not on PATH: set HELM_LOCK_DOWNLOAD_URL to a mirror, HELM_LOCK_ARCHIVE to a local archive, or install deno"
}

# Asked for the launcher: install it whatever bin/ holds (an earlier install of a linked
# directory survives `helm plugin uninstall` there).
if [ "${HELM_LOCK_FROM_SOURCE:-}" = 1 ]; then
  install_launcher
  exit 0
fi

if [ "$update" = 0 ] && installed_is_current; then
  log "helm-lock $version is already installed in $bin_dir (run install-binary.sh -u to replace it)"
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
archive_name=helm-lock-$version-$os-$arch$libc.$ext
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
