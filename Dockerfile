# syntax=docker/dockerfile:1
# Build a static binary, then ship it alone on a distroless base as a
# non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The release and the commit it is built from (.git is not in the build
# context): docker build --build-arg VERSION=v0.9.0 --build-arg COMMIT=$(git rev-parse HEAD) .
ARG VERSION=dev
ARG COMMIT=
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/gatehouse . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
# bbolt data lives here, owned by the nonroot user (65532); mount a volume
# to keep it across restarts.
COPY --from=build --chown=65532:65532 /out/data /var/lib/gatehouse
WORKDIR /var/lib/gatehouse
ENV GATEHOUSE_DATA_DIR=/var/lib/gatehouse \
    GATEHOUSE_LISTEN=:8080 \
    GATEHOUSE_OPS_LISTEN=:9090
USER nonroot:nonroot
EXPOSE 8080 9090
# distroless has no shell or curl: the binary checks its own ops listener.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/gatehouse", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]
