#!/usr/bin/env bash
# Builds leakhound's npm packages into target/npm/:
#   leakhound-VERSION.tgz                   the JS package (launcher, API, types, leakhound/test)
#   leakhound-linux-x64-gnu-VERSION.tgz     @leakhound/linux-x64-gnu  (needs glibc)
#   leakhound-linux-x64-musl-VERSION.tgz    @leakhound/linux-x64-musl (fully static)
#
# usage: bash npm/build.sh [--platform KEY]... [--binary KEY=PATH]... [--no-build]
#   --platform KEY      build only these platform packages (default: linux-x64-gnu linux-x64-musl;
#                       keys are npm/platforms.json's)
#   --binary KEY=PATH   package this already built binary for KEY instead of building it
#                       (the tests reuse cargo's build; the release workflow its artifacts)
#   --no-build          never run cargo: reuse target/.../release/leakhound, fail if absent
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/npm

platforms=()
declare -A given=()
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --platform) platforms+=("$2"); shift 2 ;;
    --binary) given[${2%%=*}]=${2#*=}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#platforms[@]} -gt 0 ] || platforms=(linux-x64-gnu linux-x64-musl)

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || { echo "build.sh: no version in Cargo.toml" >&2; exit 2; }

field() { node -e 'const p=require(process.argv[1])[process.argv[2]]; if(!p){console.error(`build.sh: unknown platform ${process.argv[2]}`);process.exit(2)} console.log(p[process.argv[3]]||"")' "$root/npm/platforms.json" "$1" "$2"; }

# One cargo build per distinct (target, static) pair; prints the binary's path.
binary_for() {
  local key=$1 rust_target static exe path
  rust_target=$(field "$key" rust_target)
  static=$(field "$key" static)
  exe=$(field "$key" exe)
  if [ "$static" = true ] && [[ "$rust_target" == *-gnu ]]; then
    # No Rust musl standard library here (rustup cannot download it offline,
    # Debian ships none): link glibc statically instead. The result has no
    # dynamic loader and runs on musl (Alpine) as on glibc.
    path=target/$rust_target/release/$exe
    if [ $build = 1 ]; then
      RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release --locked -p leakhound --target "$rust_target" >&2
    fi
  elif [ "$rust_target" = "$(rustc -vV | sed -n 's/^host: //p')" ]; then
    path=target/release/$exe
    [ $build = 0 ] || cargo build --release --locked -p leakhound >&2
  else
    path=target/$rust_target/release/$exe
    [ $build = 0 ] || cargo build --release --locked -p leakhound --target "$rust_target" >&2
  fi
  [ -x "$path" ] || { echo "build.sh: no binary at $path for $key" >&2; exit 2; }
  echo "$root/$path"
}

# Packed aside and moved in at the end: a failed build leaves the last good tarballs.
mkdir -p "$out"
pack=$(mktemp -d "$out/.pack.XXXXXX")
trap 'rm -rf "$pack"' EXIT
for key in "${platforms[@]}"; do
  src=${given[$key]:-}
  [ -n "$src" ] || src=$(binary_for "$key")
  [ -x "$src" ] || { echo "build.sh: $src is not an executable (for $key)" >&2; exit 2; }
  if [ "$(field "$key" static)" = true ] && command -v file >/dev/null && ! file -L "$src" | grep -q 'statically linked\|static-pie linked'; then
    echo "build.sh: $src is not statically linked, so it cannot be the $key package" >&2
    exit 2
  fi
  dir=$(node npm/scripts/stage.js platform "$key" "$src" "$version")
  # Debug info stays in target/; the package carries the stripped binary.
  if command -v strip >/dev/null && [ "$(field "$key" os)" = linux ]; then
    strip "$dir/bin/$(field "$key" exe)"
  fi
  npm pack --silent --pack-destination "$pack" "$dir" >/dev/null
done
dir=$(node npm/scripts/stage.js wrapper "$version")
npm pack --silent --pack-destination "$pack" "$dir" >/dev/null
rm -f "$out"/leakhound-*.tgz
mv "$pack"/*.tgz "$out"/
ls -l "$out"/*.tgz | awk '{print $5, $9}'
