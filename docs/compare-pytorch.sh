#!/usr/bin/env bash
# Side-by-side training speed: fmtune against PyTorch at its best setting
# (../shared/reference/torch_best.sh), one epoch of the 50,000 training
# images, batch 128, run A B A B on the same machine. Prints a Markdown
# table of train samples/s (each figure the better of the two runs).
#
# Usage: docs/compare-pytorch.sh [ARCH...]   (default: mlp deep cnn cnn-dropout)
# With FMTUNE_BEFORE=/path/to/an/older/fmtune, that binary runs in the same
# loop (before, fmtune, PyTorch, twice) and gets a column of its own.
# Needs: go, python3-torch, the data (dataset-fashion-mnist), OpenBLAS.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${TORCH_REF:-../shared/reference}
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(mlp deep cnn cnn-dropout)
bin=$(mktemp -d)/fmtune
go build -tags openblas -o "$bin" ./cmd/fmtune
out=$(mktemp -d)

# optimizer and learning rate per architecture (those of the issue's table)
config() {
	case $1 in
	mlp) echo "sgd 0.1" ;;
	*) echo "adam 0.001" ;;
	esac
}
fm() { # arch threads [older binary, which has no --threads] -> samples/s
	read -r opt lr <<<"$(config "$1")"
	local threads=(--threads "$2")
	[ -z "${3:-}" ] || threads=()
	"${3:-$bin}" train --arch "$1" --optimizer "$opt" --lr "$lr" --batch 128 --epochs 1 "${threads[@]}" --json |
		python3 -c 'import json,sys; print(round(json.load(sys.stdin)["history"][0]["samples_per_sec"]))'
}
pt() { # arch threads -> samples/s
	read -r opt lr <<<"$(config "$1")"
	"$ref/torch_best.sh" --arch "$1" --optimizer "$opt" --lr "$lr" --batch 128 --epochs 1 \
		--threads "$2" --blas-threads 1 --json "$out/t.json" >/dev/null
	python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["samples_per_s"]))' "$out/t.json"
}
best() { printf '%s\n' "$@" | sort -n | tail -1; }

before=${FMTUNE_BEFORE:-}
if [ -n "$before" ]; then
	echo "| arch | threads | before samples/s | fmtune samples/s | PyTorch (torch_best.sh) samples/s | ratio |"
	echo "|---|---|---|---|---|---|"
else
	echo "| arch | threads | fmtune samples/s | PyTorch (torch_best.sh) samples/s | ratio |"
	echo "|---|---|---|---|---|"
fi
for arch in "${archs[@]}"; do
	case $arch in cnn | cnn-dropout) threads=(2 1) ;; *) threads=(1) ;; esac
	for t in "${threads[@]}"; do
		c1= c2=
		[ -n "$before" ] && c1=$(fm "$arch" "$t" "$before")
		a1=$(fm "$arch" "$t"); b1=$(pt "$arch" "$t")
		[ -n "$before" ] && c2=$(fm "$arch" "$t" "$before")
		a2=$(fm "$arch" "$t"); b2=$(pt "$arch" "$t")
		a=$(best "$a1" "$a2"); b=$(best "$b1" "$b2")
		col=""
		[ -n "$before" ] && col="$(best "$c1" "$c2") ($c1, $c2) | "
		printf '| %s | %s | %s%s (%s, %s) | %s (%s, %s) | %.2f |\n' "$arch" "$t" "$col" "$a" "$a1" "$a2" "$b" "$b1" "$b2" \
			"$(python3 -c "print($a/$b)")"
	done
done
