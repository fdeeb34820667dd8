# Shared helpers for tests/kernel-matrix/* (sourced, not executed).
# shellcheck shell=bash

KM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KM_REPO=$(cd "$KM_DIR/../.." && pwd)
: "${KM_BUILD_DIR:=$KM_REPO/build/kernel-matrix}"
: "${KM_KERNEL_CACHE:=$KM_REPO/build/kernels}"
: "${KM_KERNELS_FILE:=$KM_DIR/kernels}"

km_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
km_die() { km_log "error: $*"; exit 2; }

# Print "NAME PATTERN [MODULE...]" for every kernel in the table (optionally only the names given).
km_kernel_table() {
    local want=" $* " name pat rest
    while read -r name pat rest; do
        [[ -z "$name" || "$name" == \#* ]] && continue
        [[ -n "$pat" ]] || km_die "$KM_KERNELS_FILE: no package pattern for '$name'"
        if [[ "$want" != "  " && "$want" != *" $name "* ]]; then continue; fi
        printf '%s %s %s\n' "$name" "$pat" "$rest"
    done < "$KM_KERNELS_FILE"
}

# Now in seconds with millisecond precision.
km_now() { date +%s.%N | cut -c1-14; }
