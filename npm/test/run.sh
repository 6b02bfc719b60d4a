#!/usr/bin/env bash
# The npm packages, end to end, on real processes (run by
# crates/leakhound/tests/npm.rs, i.e. by `bash scripts/test.sh`):
#   1. npm/build.sh packs the tarballs (reusing an already built binary);
#   2. they install offline into a fresh project: npx leakhound --version, a real
#      npx leakhound run on a leaky fixture, the missing-platform error, the
#      LEAKHOUND_BINARY override, libc selection and the static (musl) package;
#   3. the JS API (ESM and CJS) on real runs, and its types compiled against the
#      real JSON and every field of docs/json.md (tsc --noEmit);
#   4. leakhound/test under node:test (ESM, CJS), Jest (module registry, sandbox
#      globals) and Vitest (threads, forks; vmThreads detected), pinned in
#      npm/test/runners/package-lock.json.
# usage: bash npm/test/run.sh BINARY [STATIC_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin=$(realpath "${1:?usage: run.sh BINARY [STATIC_BINARY]}")
static=${2:+$(realpath "$2")}
work=$root/target/npm/work
mkdir -p "$work"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false npm_config_loglevel=error
step() { printf '\n== %s (%s s)\n' "$*" "$SECONDS"; }
fail() { echo "npm test FAILED: $*" >&2; exit 1; }

step "build the tarballs"
args=(--platform linux-x64-gnu --binary "linux-x64-gnu=$bin")
[ -z "$static" ] || args+=(--platform linux-x64-musl --binary "linux-x64-musl=$static")
bash npm/build.sh "${args[@]}"
version=$(node -p "require('./npm/leakhound/package.json').version")
wrapper=$root/target/npm/leakhound-$version.tgz
gnu=$root/target/npm/leakhound-linux-x64-gnu-$version.tgz
musl=$root/target/npm/leakhound-linux-x64-musl-$version.tgz

fresh() { rm -rf "$1"; mkdir -p "$1"; printf '{ "name": "%s", "private": true }\n' "$(basename "$1")" > "$1/package.json"; }
# Offline for real: no registry reachable, nothing in a cache may be fetched.
offline() { npm_config_registry=http://127.0.0.1:9/ npm install --offline --no-package-lock "$@"; }

step "offline install into a fresh project"
app=$work/app
fresh "$app"
(cd "$app" && offline "$gnu" "$wrapper" >/dev/null)
got=$(cd "$app" && npx --offline leakhound --version)
[ "$got" = "leakhound $version" ] || fail "npx leakhound --version printed '$got'"
echo "npx leakhound --version: $got"
# A real run through the launcher: exit code 1 from --fail-on-leak must come through.
port=$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
set +e
(cd "$app" && PORT=$port timeout 120 npx --offline leakhound run --fail-on-leak -n 300 --warmup 300 --snapshots 3 \
  --load "http://127.0.0.1:$port/item?id=1" -- node "$root/fixtures/leaks/listeners.js") > "$work/run.out" 2>&1
rc=$?
set -e
grep -q '^Verdict: LEAK' "$work/run.out" && grep -q 'event-listeners' "$work/run.out" && [ $rc = 1 ] \
  || { cat "$work/run.out"; fail "npx leakhound run: exit $rc, expected 1 with a LEAK verdict"; }
grep -m1 '^Verdict' "$work/run.out"
echo "npx leakhound run --fail-on-leak: exit $rc"

step "missing platform package, LEAKHOUND_BINARY"
bare=$work/bare
fresh "$bare"
(cd "$bare" && offline --omit=optional "$wrapper" >/dev/null)
set +e
msg=$(cd "$bare" && npx --offline leakhound --version 2>&1)
rc=$?
set -e
[ $rc = 2 ] && grep -q 'the package @leakhound/linux-x64-gnu is not installed' <<<"$msg" && grep -q -- '--omit=optional' <<<"$msg" \
  && grep -q LEAKHOUND_BINARY <<<"$msg" || fail "missing platform package: exit $rc, message: $msg"
echo "$msg" | head -2
# node_modules copied from another machine (a Mac checkout in a Linux container): say so.
mkdir -p "$bare/node_modules/@leakhound/darwin-arm64"
printf '{ "name": "@leakhound/darwin-arm64", "version": "%s", "os": ["darwin"], "cpu": ["arm64"] }\n' "$version" > "$bare/node_modules/@leakhound/darwin-arm64/package.json"
set +e
msg=$(cd "$bare" && npx --offline leakhound --version 2>&1)
rc=$?
set -e
[ $rc = 2 ] && grep -q 'Found @leakhound/darwin-arm64 instead: node_modules was installed on another platform' <<<"$msg" \
  || fail "copied node_modules: exit $rc, message: $msg"
rm -rf "$bare/node_modules/@leakhound/darwin-arm64"
got=$(cd "$bare" && LEAKHOUND_BINARY=$bin npx --offline leakhound --version)
[ "$got" = "leakhound $version" ] || fail "LEAKHOUND_BINARY: $got"
set +e
msg=$(cd "$bare" && LEAKHOUND_BINARY=/nonexistent/leakhound npx --offline leakhound --version 2>&1)
rc=$?
set -e
[ $rc = 2 ] && grep -q 'LEAKHOUND_BINARY is set to /nonexistent/leakhound, which does not exist' <<<"$msg" || fail "bad LEAKHOUND_BINARY: $rc $msg"

step "SIGTERM to the launcher stops the binary and the app it started"
secs=$((61 + RANDOM % 30))
(cd "$app" && exec node node_modules/leakhound/bin/leakhound.js watch --interval 200ms -- node "$root/fixtures/live/holder.js" "$secs") > "$work/term.out" 2>&1 &
shim=$!
for _ in $(seq 100); do pgrep -f "fixtures/live/holder.js $secs" >/dev/null && break; sleep 0.1; done
apppid=$(pgrep -f "fixtures/live/holder.js $secs" | head -1)
[ -n "$apppid" ] || { cat "$work/term.out"; fail "the app never started under the launcher"; }
sleep 1
kill -TERM "$shim"
set +e
wait "$shim"
rc=$?
set -e
for _ in $(seq 50); do kill -0 "$apppid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$apppid" 2>/dev/null || { kill "$apppid"; fail "app $apppid outlived the launcher's SIGTERM"; }
echo "launcher exit status after SIGTERM: $rc; app $apppid stopped"

if [ -n "$static" ]; then
  step "libc selection and the static musl package"
  both=$work/both
  fresh "$both"
  # npm reads the libc field: asked for the musl package by name on glibc, it refuses
  # (as an optional dependency of leakhound it is skipped instead).
  set +e
  msg=$(cd "$both" && offline "$musl" "$wrapper" 2>&1)
  rc=$?
  set -e
  [ $rc != 0 ] && grep -q 'Valid libc:  musl' <<<"$msg" || fail "npm installed the musl package on glibc: $rc $msg"
  echo "npm on glibc refuses the musl package: $(grep -m1 'notsup Unsupported' <<<"$msg" || grep -m1 EBADPLATFORM <<<"$msg")"
  file -L "$static" | grep -Eq 'statically linked|static-pie linked' || fail "$static is not static: $(file -L "$static")"
  ldd "$static" 2>&1 | grep -Eq "statically linked|not a dynamic executable" || fail "ldd finds shared libraries in $static: $(ldd "$static" 2>&1)"
  alpine=$work/musl
  fresh "$alpine"
  # The musl package alone, as an Alpine machine gets it (--force: this one is glibc).
  (cd "$alpine" && offline --force "$musl" "$wrapper" >/dev/null 2>&1)
  [ ! -e "$alpine/node_modules/@leakhound/linux-x64-gnu" ] && [ -x "$alpine/node_modules/@leakhound/linux-x64-musl/bin/leakhound" ] \
    || fail "the musl package alone was not installed"
  # The launcher here (glibc) falls back to the static binary, which runs anywhere.
  got=$(cd "$alpine" && npx --offline leakhound --version)
  [ "$got" = "leakhound $version" ] || fail "static binary through the launcher: $got"
  echo "static package: $(file -L "$static" | sed 's/.*: //' | cut -d, -f1-2,4); launcher: $got"
fi

step "JS API: ESM and CJS on real runs"
cp -r npm/test/api "$app/"
mkdir -p "$work/json"
(cd "$app" && LEAKHOUND_FIXTURES=$root/fixtures LEAKHOUND_JSON_OUT=$work/json timeout 300 node --test --test-reporter=spec api/)

step "leak-test runners: npm ci (pinned, registry or cache)"
runners=$work/runners
hash=$(cat npm/test/runners/package.json npm/test/runners/package-lock.json | sha256sum | cut -c1-16)
if [ "$(cat "$runners/.installed" 2>/dev/null)" != "$hash" ]; then
  rm -rf "$runners"
  mkdir -p "$runners"
  cp npm/test/runners/package.json npm/test/runners/package-lock.json "$runners/"
  (cd "$runners" && npm ci --prefer-offline --no-audit --no-fund >/dev/null)
  echo "$hash" > "$runners/.installed"
fi
# Test sources are copied fresh each time; leakhound comes from the tarballs, offline.
(cd npm/test/runners && tar cf - --exclude=node_modules --exclude=package.json --exclude=package-lock.json .) | (cd "$runners" && tar xf -)
rm -rf "$runners/node_modules/leakhound" "$runners/node_modules/@leakhound"
mkdir -p "$runners/node_modules/@leakhound"
tar xzf "$wrapper" -C "$runners/node_modules" && mv "$runners/node_modules/package" "$runners/node_modules/leakhound"
tar xzf "$gnu" -C "$runners/node_modules/@leakhound" && mv "$runners/node_modules/@leakhound/package" "$runners/node_modules/@leakhound/linux-x64-gnu"

step "types: tsc --noEmit over real JSON, docs/json.md fields, matcher declarations"
(cd "$runners" && node "$root/npm/test/api/gen-types-check.cjs" "$work/json" "$root/docs/json.md" > types-check.generated.ts && npx tsc -p tsconfig.json)
echo "tsc: ok ($(grep -c '' "$runners/types-check.generated.ts") generated lines)"

cd "$runners"
step "node:test (ESM and CJS)"
timeout 300 node --test --test-reporter=spec node-test/
step "Jest (CJS, module registry, sandbox globals)"
timeout 300 npx jest --ci --colors=false
step "Vitest, threads pool (ESM + TypeScript)"
timeout 300 npx vitest run --pool=threads --reporter=verbose vitest/
step "Vitest, forks pool"
timeout 300 npx vitest run --pool=forks --reporter=verbose vitest/
step "Vitest, vmThreads pool: detected and explained"
timeout 300 npx vitest run --pool=vmThreads --reporter=verbose vm-pool/
step "all npm tests passed"
