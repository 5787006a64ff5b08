# Conveniences; the README's commands work without make.
GO ?= go
TAGS ?= $(shell test -e /usr/lib/x86_64-linux-gnu/libopenblas.so -o -e /usr/lib/libopenblas.so && echo openblas)

.PHONY: build test bench compare ci

build:
	$(GO) build -tags "$(TAGS)" -o fmtune ./cmd/fmtune

test:
	$(GO) vet ./... && $(GO) test -race ./...

bench:
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench . -benchmem ./models/... ./storage/

# fmtune against PyTorch at its best, side by side (docs/performance.md)
compare:
	bash docs/compare-pytorch.sh

ci:
	bash .ci/run
