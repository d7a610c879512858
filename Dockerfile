# The storefleet image: one static binary (operator, API, dashboard) on a distroless,
# non-root base. Build: docker build -t ghcr.io/storefleet/storefleet:$(git describe --tags --always) .
# The binary is the one `make build` produces and the tests check is statically linked:
# `make build` is `make web` (here: the web stage) and `make binary`.

# The dashboard: npm ci from the lock, type check, Vite build into web/dist/app.
FROM node:22-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Embedded by the Go package web.
COPY --from=web /src/web/dist/app web/dist/app
ARG VERSION=dev
RUN make binary VERSION=${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/storefleet /storefleet
USER 65532:65532
ENTRYPOINT ["/storefleet"]
