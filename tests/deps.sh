#!/bin/sh
# Install the Debian packages given as arguments that are not installed yet.
# Idempotent and quick when nothing is missing (one dpkg-query call).
set -eu
missing=""
have=" $(dpkg-query -W -f='${Package}:${db:Status-Abbrev} ' "$@" 2>/dev/null || true) "
for p in "$@"; do
	case "$have" in
	*" $p:ii "*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "podsnoop: missing Debian packages:$missing" >&2
	echo "podsnoop: run as root, or: apt-get install$missing" >&2
	exit 1
fi
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
