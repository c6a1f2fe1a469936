# A small non-root image: the release binary on distroless (glibc, no shell).
#   docker build -t globaldns .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin globaldns

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/globaldns /usr/local/bin/globaldns
USER 65532:65532
EXPOSE 5353/udp 5353/tcp
ENTRYPOINT ["/usr/local/bin/globaldns"]
