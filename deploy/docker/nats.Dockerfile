# The official nats-server, built from the github.com/nats-io/nats-server/v2
# module pinned in vigil's go.mod (CGO_ENABLED=0, zone data compiled in with
# -tags timetzdata). Users with a registry can use the official `nats` image
# instead: the configuration in deploy/nats/ works unchanged.
FROM scratch
COPY nats-server /nats-server
COPY vigil-probe /vigil-probe
COPY --chown=65532:65532 empty/ /data/
USER 65532:65532
VOLUME /data
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
