#!/usr/bin/env bash
# Malformed input, long mode (issue 15): every property test, PROPTEST_CASES cases each
# (default 100,000), run in rounds of ROUND cases with seeds 1, 2, … so the count is exact and
# a run is reproducible. A property stops early after BUDGET seconds (default 900) or at its
# first failure; one line per property: name, cases run, result, seconds.
#
#   bench/props.sh                       # everything, 100,000 cases each
#   PROPTEST_CASES=20000 bench/props.sh sluice-core   # one crate, fewer cases
#   PROPS_OPT_LEVEL=0 BUDGET=60 ROUND=2000 bench/props.sh   # reuse CI's debug build, 60 s each
#   PROPS_FILTER='^templates_' bench/props.sh sluice-core  # only the properties matching a regex
#
# Built with the dev profile (debug assertions and overflow checks on, so arithmetic overflow
# panics as in CI) at opt-level 1 for the workspace crates too: dependencies are already built
# at opt-level 1 by the dev profile, so only Sluice's own crates are recompiled.
# Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL=${PROPTEST_CASES:-100000}
ROUND=${ROUND:-10000}
BUDGET=${BUDGET:-900}
CRATES=("$@")
[ ${#CRATES[@]} -eq 0 ] && CRATES=(sluice-core sluice-slack-wire sluice-sources sluice-inbound sluice)

export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only
export CARGO_PROFILE_DEV_OPT_LEVEL=${PROPS_OPT_LEVEL:-1}
# Shrinking a failure can take long; the failing input is printed either way.
export PROPTEST_MAX_SHRINK_TIME=${PROPTEST_MAX_SHRINK_TIME:-60000}

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo); $TOTAL cases per property, rounds of $ROUND, budget ${BUDGET}s"
failed=0
# Build every crate's props binary in one cargo call (even when only some are run): one
# feature set, so dependencies are not rebuilt between runs.
pkgs=(-p sluice-core -p sluice-slack-wire -p sluice-sources -p sluice-inbound -p sluice)
declare -A bins
while IFS=' ' read -r name exe; do bins[$name]=$exe; done < <(
    cargo test "${pkgs[@]}" --test props --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "props":
        d = m["manifest_path"].split("/")[-2]
        print(d if d == "sluice" else "sluice-" + d, m["executable"])')
for crate in "${CRATES[@]}"; do
    bin=${bins[$crate]:-}
    [ -x "$bin" ] || { echo "$crate: build failed"; exit 1; }
    # Properties only: the unmutated_* tests check the seeds once.
    for prop in $("$bin" --list 2>/dev/null | sed -n 's/: test$//p' | grep -v "^unmutated_" | grep -E -- "${PROPS_FILTER:-.}"); do
        start=$(date +%s)
        done_cases=0
        result=ok
        seed=1
        while [ "$done_cases" -lt "$TOTAL" ]; do
            n=$((TOTAL - done_cases < ROUND ? TOTAL - done_cases : ROUND))
            log=$(mktemp)
            if ! PROPTEST_CASES=$n PROPTEST_RNG_SEED=$seed "$bin" --exact "$prop" --test-threads 1 >"$log" 2>&1; then
                result="FAILED (seed $seed, see below)"
                sed -n '/panicked\|Test failed\|minimal failing input/,+6p' "$log" | head -40 >&2
                rm -f "$log"
                failed=1
                break
            fi
            rm -f "$log"
            done_cases=$((done_cases + n))
            seed=$((seed + 1))
            if [ $(($(date +%s) - start)) -ge "$BUDGET" ]; then
                [ "$done_cases" -lt "$TOTAL" ] && result="ok (stopped at the ${BUDGET}s budget)"
                break
            fi
        done
        printf '%-16s %-40s %8d cases  %-30s %5ds\n' "$crate" "$prop" "$done_cases" "$result" $(($(date +%s) - start))
    done
done
exit $failed
