# Multi-stage build: compile in the Rust image, run on a slim Debian with only the binary
# (migrations and pages are embedded in it) and the configuration.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY config config
# The pages are compiled into the binary; benches/ is listed in Cargo.toml.
COPY static static
COPY benches benches
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl openssl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /app campaign
WORKDIR /app
COPY --from=build /src/target/release/campaign-lottery /usr/local/bin/campaign-lottery
COPY config config
USER campaign
ENV APP_ENVIRONMENT=production
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
CMD ["campaign-lottery", "serve"]
