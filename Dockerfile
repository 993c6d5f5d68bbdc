# One image for both services: `shop-api` and `checkout-worker`. Migrations and the storefront
# are compiled into the binaries.
#
#   docker build -t shop .
#   docker run shop shop-api serve          # or: checkout-worker run

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release --bin shop-api --bin checkout-worker && \
    cp target/release/shop-api target/release/checkout-worker /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && \
    rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 shop
COPY --from=build /usr/local/bin/shop-api /usr/local/bin/checkout-worker /usr/local/bin/
USER shop
ENV API_ADDR=0.0.0.0:8080 WORKER_METRICS_ADDR=0.0.0.0:9101 LOG_FORMAT=json
EXPOSE 8080 9101
CMD ["shop-api", "serve"]
