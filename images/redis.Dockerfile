# The managed Redis of McpServers (spec.redis.image, the chart's mcpServerDefaults.redisImage): Debian's
# redis-server, with redis-cli, sh and coreutils for the start scripts of a highly available Redis.
#   docker build -f images/redis.Dockerfile -t mcp-fleet/redis:7.0 .
# The local test cluster builds the same image from a debootstrap root filesystem (e2e/images/build.sh).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server ca-certificates \
 && rm -rf /var/lib/apt/lists/*
USER redis
EXPOSE 6379
ENTRYPOINT ["redis-server"]
CMD ["--protected-mode", "no"]
