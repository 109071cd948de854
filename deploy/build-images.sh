#!/usr/bin/env bash
# Builds vigil's container images without pulling anything: static binaries
# (CGO_ENABLED=0) are compiled on the host into build/docker/, then each
# deploy/docker/*.Dockerfile copies its binary onto an empty (scratch) image.
#
#   deploy/build-images.sh [TAG]     (default tag: dev)
#
# Images: vigil/vigil, vigil/nats (the official nats-server from the module
# pinned in go.mod), vigil/agent, vigil/mailsink, vigil/gateway; each also
# holds vigil-probe, the HTTP health check.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tag=${1:-dev}
out=build/docker
rm -rf "$out"
mkdir -p "$out/empty"

export CGO_ENABLED=0 GOOS=linux GOFLAGS=-trimpath
ldflags="-s -w"
go build -ldflags "$ldflags" -o "$out/" ./cmd/vigil ./cmd/vigil-mailsink ./cmd/vigil-gateway ./cmd/vigil-probe
if [[ -d cmd/vigil-agent ]]; then
	go build -ldflags "$ldflags" -o "$out/" ./cmd/vigil-agent
fi
# nats-server's own main package, at the version go.mod pins.
go build -tags timetzdata -ldflags "$ldflags" -o "$out/nats-server" github.com/nats-io/nats-server/v2

for f in deploy/docker/*.Dockerfile; do
	name=$(basename "$f" .Dockerfile)
	bin=$name
	case $name in
	nats) bin=nats-server ;;
	agent) bin=vigil-agent ;;
	mailsink) bin=vigil-mailsink ;;
	gateway) bin=vigil-gateway ;;
	esac
	if [[ ! -x $out/$bin ]]; then
		echo "skip vigil/$name: no $bin binary" >&2
		continue
	fi
	echo "building vigil/$name:$tag" >&2
	docker build -q -f "$f" -t "vigil/$name:$tag" "$out" >/dev/null
done
docker images --filter 'reference=vigil/*' --format '{{.Repository}}:{{.Tag}}\t{{.Size}}'
