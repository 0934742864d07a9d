# syntax=docker/dockerfile:1
# Build a static balance-l4 and ship it alone in a minimal, non-root image:
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t balance-l4 .
#   docker run -e BALANCE_ADMIN_TOKEN=... -p 9090:9090 balance-l4
#
# deploy/dockerfile_test.go builds both binaries from the RUN lines below, as
# they are written, and checks the image's default configuration: keep the
# build on one RUN line per binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version -version, the log and GET /api/v1/info show (.git is not in the
# build context, so without it the binary says "devel").
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/balance-l4 ./cmd/balance-l4
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/healthcheck ./deploy/healthcheck

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=devel
LABEL org.opencontainers.image.title="balance-l4" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/balance-l4 /out/healthcheck /usr/local/bin/
# The default configuration: the admin server on 0.0.0.0:9090, with the token
# from BALANCE_ADMIN_TOKEN, and no services. Mount your own file here.
COPY deploy/container.toml /etc/balance/balance.toml
USER nonroot:nonroot
# The admin server (dashboard, API, /metrics); services listen where your file
# says: publish those ports too.
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["/usr/local/bin/balance-l4"]
CMD ["-config", "/etc/balance/balance.toml"]
