#!/usr/bin/env bash
# The benchmark in one command, from anywhere in the repository:
#
#   bash bench/run.sh               # 3 interleaved runs, results into BENCHMARKS.md and bench/chart.svg
#   bash bench/run.sh --install     # first install HAProxy, nginx stream and strace (Debian packages)
#   bash bench/run.sh -quick        # smoke test: 1 run of 1 s, printed only
#   bash bench/run.sh -peers direct,balance-l4,haproxy-2t -runs 5
#
# Every other argument goes to l4bench (go run ./bench/cmd/l4bench -h lists them);
# later flags override the defaults -runs 3 -out BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

install=0
quick=0
args=()
for a in "$@"; do
	case "$a" in
	--install) install=1 ;;
	-quick | --quick) quick=1; args+=("$a") ;;
	*) args+=("$a") ;;
	esac
done

if ((install)); then
	sudo=""
	if [[ $(id -u) != 0 ]]; then sudo="sudo"; fi
	$sudo apt-get update
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y haproxy nginx libnginx-mod-stream strace
fi

defaults=(-runs 3 -out BENCHMARKS.md)
if ((quick)); then defaults=(); fi
exec go run ./bench/cmd/l4bench "${defaults[@]}" "${args[@]}"
