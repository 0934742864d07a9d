# syntax=docker/dockerfile:1
# Build a static balance-l4 and ship it alone in a minimal, non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
    -o /out/balance-l4 ./cmd/balance-l4

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/balance-l4 /usr/local/bin/balance-l4
COPY balance.toml /etc/balance/balance.toml
USER nonroot:nonroot
# Service ports are whatever balance.toml listens on; 9090 is the admin server
# (listen on 0.0.0.0:9090 with a token to reach it from outside the container).
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/balance-l4"]
CMD ["-config", "/etc/balance/balance.toml"]
