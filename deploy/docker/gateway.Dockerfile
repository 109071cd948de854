# vigil-gateway: the compose stack's one published HTTP port, in front of
# the ingest replicas and the api.
FROM scratch
COPY vigil-gateway /vigil-gateway
COPY vigil-probe /vigil-probe
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/vigil-gateway"]
