#!/bin/bash
# Run every test podsnoop has and end with "N passed, N failed".
#   unit tests (cmocka), plain and under ASan+UBSan: build/tests, build/asan/tests
#   integration tests (pytest, Debian's /usr/bin/python3): tests/integration
#   fuzz targets (libFuzzer, ASan+UBSan): every regression input, the seeds, then
#   FUZZ_TEST_RUNS inputs each with a fixed seed (tests/fuzz/run.sh)
#   kernel matrix: every tracer's hook methods on Debian's 6.1 and 6.12 kernels
#   under qemu and on this kernel (tests/kernel-matrix/agent/run)
# Environment: PYTEST_ARGS (e.g. "-k exec -x") narrows the integration run;
# FUZZ_TEST_RUNS (default 20000) sets the fuzzing; FUZZ_SKIP=1 skips it;
# KM_SKIP=1 skips the kernel matrix (without qemu only this kernel is tested).
#   tests/run.sh --unit     the unit tests alone (make unit); T=filter keeps the
#                           test_filter binaries, UNIT_CASE='pattern' their cases
#                           whose names match (cmocka's * and ?, tests/unit/unit.h)
set -u
unit_only=0
[ "${1:-}" = --unit ] && unit_only=1
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
out=build/test-results
mkdir -p "$out"
passed=0
failed=0

if [ "$(id -u)" != 0 ]; then
	echo "tests load BPF programs and make cgroups: run them as root" >&2
	exit 1
fi

echo "== unit tests (cmocka; plain, then ASan+UBSan)"
ran=0
for t in build/tests/test_* build/asan/tests/test_*; do
	[ -x "$t" ] && [ "${t%.d}" = "$t" ] || continue
	[ -z "${T:-}" ] || [ "${t##*/}" = "test_$T" ] || continue
	ran=$((ran + 1))
	log="$out/$(echo "$t" | tr / _).tap"
	CMOCKA_MESSAGE_OUTPUT=TAP ASAN_OPTIONS=detect_leaks=1 "$t" >"$log" 2>&1
	rc=$?
	ok=$(grep -c '^ok ' "$log")
	nok=$(grep -c '^not ok ' "$log")
	if [ "$rc" != 0 ] && [ "$nok" = 0 ]; then
		nok=1 # crashed or a sanitizer fired outside a test
	fi
	passed=$((passed + ok))
	failed=$((failed + nok))
	printf '  %-40s %3d passed, %d failed\n' "$t" "$ok" "$nok"
	if [ "$nok" != 0 ]; then
		sed 's/^/    /' "$log"
	fi
done
if [ "$ran" = 0 ]; then
	echo "  no unit test binary${T:+ test_$T} was built" >&2
	failed=$((failed + 1))
fi
if [ "$unit_only" = 1 ]; then
	echo
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
fi

echo "== integration tests (real BPF, real cgroups, real containerd)"
# shellcheck disable=SC2086
$PY -m pytest tests/integration -p no:cacheprovider -rfE -q \
	--junitxml="$out/integration.xml" ${PYTEST_ARGS:-}
read -r ip ifl < <($PY - "$out/integration.xml" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1)  # pytest could not even report: count as a failure
    sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
PYEOF
)
passed=$((passed + ip))
failed=$((failed + ifl))

echo "== fuzz targets (libFuzzer; regression inputs, seeds, then fixed-seed runs)"
if [ "${FUZZ_SKIP:-}" = 1 ]; then
	echo "  skipped (FUZZ_SKIP=1)"
else
	tests/fuzz/run.sh test "${FUZZ_TEST_RUNS:-20000}" 2>&1 | tee "$out/fuzz.log"
	if ! read -r fp ff < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' \
		"$out/fuzz.log" | tail -n 1); then
		fp=0 ff=1 # it could not even report
	fi
	passed=$((passed + fp))
	failed=$((failed + ff))
fi

echo "== kernel matrix (hook methods on Debian 6.1/6.12 under qemu, and on this kernel)"
tests/kernel-matrix/agent/run 2>&1 | tee "$out/kernel-matrix.log"
if ! read -r kp kf < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' \
	"$out/kernel-matrix.log" | tail -n 1); then
	kp=0 kf=1 # it could not even report
fi
passed=$((passed + kp))
failed=$((failed + kf))

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
