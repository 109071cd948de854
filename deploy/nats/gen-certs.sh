#!/usr/bin/env bash
# Makes deploy/nats/secure/ for docker-compose.secure.yml: a private CA, a
# server certificate for nats1..3 (client port and cluster routes) and a
# client certificate, one nkey per vigil role, one for the compose agent
# and an admin nkey, and users.conf with their least-privilege permissions.
# Uses vigil itself (vigil nats certs|users), so only Go is needed, no
# openssl.
#
#   deploy/nats/gen-certs.sh            # keeps an existing CA, new nkeys
#   docker-compose -f docker-compose.yml -f docker-compose.secure.yml up -d
#
# DEVELOPMENT ONLY: the directory is gitignored and its keys are made
# readable by every user, because the containers run as uid 65532 and
# cannot read files owned by you otherwise. In production give each
# machine only its own seed and key, owned by the service's user, mode
# 0600 (docs/tls-and-identities.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=deploy/nats/secure
agent=${VIGIL_AGENT_SYSTEM_ID:-compose-host}
mkdir -p "$out"
printf '*\n' >"$out/.gitignore"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/vigil" ./cmd/vigil
"$bin/vigil" nats certs --dir "$out" --hosts nats1,nats2,nats3,localhost,127.0.0.1
"$bin/vigil" nats users --nkeys "$out" --admin --agent "$agent" >"$out/users.conf"
chmod a+r "$out"/*.nk "$out"/users.conf "$out"/ca.pem "$out"/server*.pem "$out"/client*.pem
echo "wrote $out: users.conf, *.nk (roles, agent $agent, admin), ca.pem, server.pem, client.pem and keys" >&2
