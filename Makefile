# vigil: every target has a one-line comment; `make check` is what CI runs.

.PHONY: build test lint fmt vet tidy bench run check ci images compose-e2e

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

# bench: the benchmark command, every scenario at full size (several minutes; BENCHMARKS.md); plots in bench-out/
bench:
	go run ./cmd/vigil-bench --out bench-out --cpuprofile bench-out --memprofile bench-out

# images: build every container image from scratch (nothing is pulled)
images:
	deploy/build-images.sh

# compose-e2e: the docker-compose fault test (a few minutes)
compose-e2e:
	VIGIL_COMPOSE_E2E=1 go test -count=1 -v -timeout 25m ./e2e/compose/

# run: start vigil all (data in ./vigil-data, HTTP 127.0.0.1:8080, NATS 127.0.0.1:4222)
run:
	go run ./cmd/vigil

# check: tidy, vet, lint and test: what CI runs
check: tidy vet lint test

# ci: the full CI script (check plus fuzzing and a smoke test of the binary)
ci:
	.ci/run
