# vigil: every target has a one-line comment; `make check` is what CI runs.

.PHONY: build test lint fmt vet tidy bench run check ci

# build: compile every command into bin/
build:
	go build -o bin/ ./cmd/...

# test: run every test with the race detector (the README's test command)
test:
	go test -race ./...

# lint: run golangci-lint with .golangci.yml (install: see .ci/run)
lint:
	golangci-lint run

# fmt: format the code with gofumpt and goimports
fmt:
	golangci-lint fmt

# vet: run go vet
vet:
	go vet ./...

# tidy: fail if go.mod or go.sum are not tidy (prints the diff)
tidy:
	go mod tidy -diff

# bench: run every benchmark for 2 s each, no tests
bench:
	go test -run XXX -bench . -benchtime 2s ./...

# run: start vigil all (data in ./vigil-data, HTTP :8080, NATS 127.0.0.1:4222)
run:
	go run ./cmd/vigil

# check: tidy, vet, lint and test: what CI runs
check: tidy vet lint test

# ci: the full CI script (check plus fuzzing and a smoke test of the binary)
ci:
	.ci/run
