# vigil server (every role) as a static binary on an empty image. The
# binary is built on the host (make images), so no base image is pulled:
# CGO_ENABLED=0, CA roots and zone data compiled in (cmd/vigil/embed.go).
FROM scratch
COPY vigil /vigil
COPY vigil-probe /vigil-probe
COPY --chown=65532:65532 empty/ /data/
USER 65532:65532
VOLUME /data
EXPOSE 8080 4222
ENTRYPOINT ["/vigil"]
CMD ["all", "--data-dir=/data", "--http-addr=:8080", "--nats-listen=0.0.0.0:4222"]
