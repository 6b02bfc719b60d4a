#!/usr/bin/env bash
# Compare the offline outputs of two leakhound binaries byte for byte:
# summary, diagnose, diff, listeners, retainers, node (text and --json),
# gclog, and the HTML pages (their timestamp and command line masked).
#
#   scripts/same-output.sh BEFORE AFTER [SNAPDIR]
#
# SNAPDIR holds one sub-folder per fixture with s1..s3.heapsnapshot; when it
# is missing, fixtures/harness.js makes them (needs node and fixtures/node_modules).
# Prints one line per differing output and exits 1 if any differs.
set -u
before=$(realpath "$1"); after=$(realpath "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
snaps=${3:-$(mktemp -d /tmp/same-output-snaps.XXXXXX)}
out=$(mktemp -d /tmp/same-output.XXXXXX)
apps="leaks/global-array leaks/listeners leaks/express-sessions leaks/closure controls/warm-cache"
for app in $apps; do
  name=$(basename "$app")
  if [ ! -f "$snaps/$name/s3.heapsnapshot" ]; then
    (cd "$snaps" && timeout 120 node "$root/fixtures/harness.js" "$root/fixtures/$app.js" "$name" --snapshots 3 >/dev/null) || {
      echo "cannot make snapshots of $app" >&2; exit 2; }
  fi
done

# Both binaries run as bin/leakhound from their own folder, so that the
# command line an HTML page shows is the same.
mkdir -p "$out/before/bin" "$out/after/bin"
cp "$before" "$out/before/bin/leakhound"; cp "$after" "$out/after/bin/leakhound"

# run LABEL ARGS...: both binaries, stdout+stderr+status into $out/{before,after}/LABEL
run() {
  local label=$1; shift
  for side in before after; do
    (cd "$out/$side" && COLUMNS=160 NO_COLOR=1 timeout 300 bin/leakhound "$@" >"$label.out" 2>"$label.err"; echo "exit $?" >>"$label.out")
  done
}

gclog=$root/crates/leakhound/tests/data/seed-002-trace-gc.log
for app in $apps; do
  n=$(basename "$app"); d=$snaps/$n
  for j in "" --json; do
    run "summary-$n$j" summary $j "$d/s3.heapsnapshot"
    run "summary-raw-$n$j" summary $j --raw-sizes --sort count --top 10 "$d/s3.heapsnapshot"
    run "diagnose-$n$j" diagnose $j "$d/s1.heapsnapshot" "$d/s2.heapsnapshot" "$d/s3.heapsnapshot"
    run "diagnose-exact-$n$j" diagnose $j --exact --min-growth 1MB "$d/s1.heapsnapshot" "$d/s2.heapsnapshot" "$d/s3.heapsnapshot"
    run "diagnose-kib-$n$j" diagnose $j --min-growth 16KiB "$d/s1.heapsnapshot" "$d/s2.heapsnapshot" "$d/s3.heapsnapshot"
    run "diff-$n$j" diff $j "$d/s1.heapsnapshot" "$d/s3.heapsnapshot"
    run "listeners-$n$j" listeners $j --threshold 3 "$d/s3.heapsnapshot"
    run "retainers-$n$j" retainers $j --class Object "$d/s3.heapsnapshot"
  done
  run "diagnose-verbose-$n" diagnose -v "$d/s1.heapsnapshot" "$d/s2.heapsnapshot" "$d/s3.heapsnapshot"
  run "diagnose-quiet-$n" diagnose -q "$d/s1.heapsnapshot" "$d/s2.heapsnapshot" "$d/s3.heapsnapshot"
  # node and retainers by id: the first suspect's accumulator, else any object of the top class.
  id=$("$before" diagnose --json "$d/s1.heapsnapshot" "$d/s2.heapsnapshot" "$d/s3.heapsnapshot" | jq -r '.suspects[0].accumulator.id // empty')
  if [ -n "$id" ]; then
    for j in "" --json; do
      run "node-$n$j" node $j --id "$id" "$d/s3.heapsnapshot"
      run "retainers-id-$n$j" retainers $j --id "$id" "$d/s3.heapsnapshot"
    done
  fi
  # HTML pages: mask the time they were written.
  run "summary-html-$n" summary --html page.html "$d/s3.heapsnapshot"
  for side in before after; do
    sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(:[0-9]{2})? UTC/TIME/g;'  "$out/$side/page.html" >"$out/$side/summary-html-$n.html"
  done
  run "diagnose-html-$n" diagnose --html page.html "$d/s1.heapsnapshot" "$d/s2.heapsnapshot" "$d/s3.heapsnapshot"
  for side in before after; do
    sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(:[0-9]{2})? UTC/TIME/g;'  "$out/$side/page.html" >"$out/$side/diagnose-html-$n.html"
  done
done
# Bad input: the one-line errors must not change either.
run "diagnose-two" diagnose "$snaps/warm-cache/s1.heapsnapshot" "$snaps/warm-cache/s2.heapsnapshot"
run "summary-missing" summary /nonexistent.heapsnapshot
run "diagnose-missing" diagnose /nonexistent1 /nonexistent2 /nonexistent3
for j in "" --json; do
  run "gclog$j" gclog $j "$gclog"
  run "gclog-rate$j" gclog $j --min-growth 500kB/h "$gclog"
  run "gclog-day$j" gclog $j --min-growth 10MB/d "$gclog"
done
# run: timings differ between runs, so compare the JSON's shape (every
# key path, in the order first seen), and the verdict, of one leak fixture.
port=$((20000 + RANDOM % 20000))
for side in before after; do
  (cd "$out/$side" && timeout 180 bin/leakhound run --json -n 300 --warmup 300 --snapshots 3 --load "http://127.0.0.1:$port/" \
     -- env PORT=$port node "$root/fixtures/leaks/global-array.js" 2>/dev/null >run.json
   jq -c 'reduce (paths | map(if type == "number" then "#" else . end) | join(".")) as $p ([]; if index([$p]) then . else . + [$p] end), .verdict' run.json >run-json-shape.out)
done
rm -f "$out"/*/page.html "$out"/*/run.json

status=0; total=0
rm -rf "$out/before/bin" "$out/after/bin"
for f in "$out"/before/*; do
  total=$((total + 1))
  b=$(basename "$f")
  if ! cmp -s "$f" "$out/after/$b"; then
    echo "DIFFERS: $b  (diff $f $out/after/$b)"; status=1
  fi
done
echo "$total outputs compared in $out; $( [ $status = 0 ] && echo 'all identical' || echo 'some differ')"
exit $status
