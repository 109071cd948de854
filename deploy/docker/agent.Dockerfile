# vigil-agent: the host agent. In a container it reports the container's
# view of the host unless /proc and /sys of the host are mounted (see
# docs/agent.md).
FROM scratch
COPY vigil-agent /vigil-agent
COPY vigil-probe /vigil-probe
COPY --chown=65532:65532 empty/ /state/
USER 65532:65532
VOLUME /state
ENTRYPOINT ["/vigil-agent"]
CMD ["run"]
