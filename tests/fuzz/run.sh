#!/bin/bash
# Run the libFuzzer targets build/fuzz/fuzz_<name> (tests/fuzz/fuzz.mk builds them).
#
#   run.sh test RUNS [NAME...]     make test: each input of tests/fuzz/crashes/<name>/
#                                  alone, the seed corpus tests/fuzz/corpus/<name>/, then
#                                  RUNS new inputs with a fixed seed (the same inputs every
#                                  time); each is one test; ends with "N passed, N failed"
#   run.sh fuzz SECONDS [NAME...]  make fuzz: fuzz each target for SECONDS with a random
#                                  seed, keeping what it finds in build/fuzz/corpus/<name>
#
# A crash, a sanitizer report, a leak, an input taking over FUZZ_TIMEOUT seconds or
# an RSS over FUZZ_RSS_MB fails; its input is kept under build/fuzz/artifacts/<name>/
# (copy it to tests/fuzz/crashes/<name>/ once fixed: it is a regression case then).
set -u
cd "$(dirname "$0")/../.."
mode=${1:-}
arg=${2:-}
shift 2 2>/dev/null || true
case "$mode" in
test | fuzz) ;;
*)
	echo "usage: $0 test RUNS [NAME...] | fuzz SECONDS [NAME...]" >&2
	exit 2
	;;
esac
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-20}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
out=build/fuzz
passed=0
failed=0

names=("$@")
if [ ${#names[@]} = 0 ]; then
	for src in tests/fuzz/fuzz_*.c; do
		[ -e "$src" ] || continue
		n=${src#tests/fuzz/fuzz_}
		names+=("${n%.c}")
	done
fi

# one libFuzzer run: label, log file, then its arguments
check() {
	local label=$1 log=$2 rc
	shift 2
	"$@" >"$log" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		printf '  %-52s ok\n' "$label"
	else
		failed=$((failed + 1))
		printf '  %-52s FAILED (exit %d; log %s)\n' "$label" "$rc" "$log"
		grep -E '^(==[0-9]+==|SUMMARY|.*runtime error|artifact_prefix|Test unit written|    #[0-9]+ )' \
			"$log" | head -n 40 | sed 's/^/    /'
	fi
}

for name in "${names[@]}"; do
	bin=$out/fuzz_$name
	seeds=tests/fuzz/corpus/$name
	crashes=tests/fuzz/crashes/$name
	art=$out/artifacts/$name
	logs=$out/logs/$name
	mkdir -p "$art" "$logs" "$seeds"
	if [ ! -x "$bin" ]; then
		failed=$((failed + 1))
		printf '  %-52s FAILED (not built: make fuzz-build)\n' "fuzz_$name"
		continue
	fi
	common=(-timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" -close_fd_mask=3
		-artifact_prefix="$art/" -print_final_stats=1)
	if [ "$mode" = test ]; then
		for c in "$crashes"/*; do
			[ -f "$c" ] || continue
			check "fuzz_$name crashes/${c##*/}" "$logs/crash-${c##*/}.log" \
				"$bin" "${common[@]}" "$c"
		done
		check "fuzz_$name corpus ($(find "$seeds" -type f | wc -l) seeds)" "$logs/corpus.log" \
			"$bin" "${common[@]}" -runs=0 "$seeds"
		work=$out/test-corpus/$name
		rm -rf "$work" && mkdir -p "$work"
		# a fixed seed and count: the same inputs on every run, never a chance result
		check "fuzz_$name $arg runs (seed 1)" "$logs/runs.log" \
			"$bin" "${common[@]}" -seed=1 -runs="$arg" -max_total_time=600 "$work" "$seeds"
	else
		work=$out/corpus/$name
		mkdir -p "$work"
		check "fuzz_$name ${arg}s" "$logs/fuzz.log" \
			"$bin" "${common[@]}" -max_total_time="$arg" "$work" "$seeds"
		grep -h '^stat::number_of_executed_units\|^stat::peak_rss_mb' "$logs/fuzz.log" |
			sed 's/^/    /'
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
