// Package deploy holds what runs balance-l4 outside a Go toolchain: the
// container image's default configuration (container.toml, which the
// Dockerfile at the repository root copies in), the image's health check
// (healthcheck/) and the systemd unit (balance-l4.service). Its test builds
// the binaries the way the Dockerfile does and checks the default
// configuration, since no container engine runs where the tests do.
package deploy
