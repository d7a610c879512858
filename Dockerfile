# The storefleet image: one static binary (operator, API, dashboard) on a distroless,
# non-root base. Build: docker build -t ghcr.io/storefleet/storefleet:$(git describe --tags --always) .
# The binary is the one `make build` produces and the tests check is statically linked.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make build VERSION=${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/storefleet /storefleet
USER 65532:65532
ENTRYPOINT ["/storefleet"]
