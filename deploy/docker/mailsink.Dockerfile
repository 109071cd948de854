# vigil-mailsink: the compose stack's development mail catcher.
FROM scratch
COPY vigil-mailsink /vigil-mailsink
COPY vigil-probe /vigil-probe
USER 65532:65532
EXPOSE 1025 8025
ENTRYPOINT ["/vigil-mailsink"]
