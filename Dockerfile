# A small non-root image: the release binary (built without debug info, see
# [profile.release] in Cargo.toml) on distroless (glibc, no shell).
#
# Nothing publishes this image: build it, push it where your clusters pull
# from, and name it in manifests/base/kustomization.yaml (`images:`); the
# manifests call it globaldns:0.1.0 until then. README, "Install in a cluster":
#   docker build -t globaldns:0.1.0 .
#   docker tag globaldns:0.1.0 REGISTRY/globaldns:0.1.0
#   docker push REGISTRY/globaldns:0.1.0
# The Rust image is the toolchain the project is built and tested with.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin globaldns

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/globaldns /usr/local/bin/globaldns
# glibc raises its mmap threshold after a large block is freed, so a
# registry load's big temporary buffers then come from the heap and leave
# holes that it keeps: a fixed threshold sends them back to the kernel when
# freed (100,000 services, JSON: 73 -> 68 MiB resident). Only loads allocate; the
# query path does not.
ENV GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072
USER 65532:65532
EXPOSE 5353/udp 5353/tcp
ENTRYPOINT ["/usr/local/bin/globaldns"]
