# game-gateway container image: build the one executable, then ship it alone on a minimal base.
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t game-gateway .
#   docker run --stop-timeout 45 -p 8080:8080 -p 9090:9090 -v $PWD/config.yaml:/app/config/config.yaml:ro game-gateway

# Build: the pinned toolchain from package-lock.json (bun is a devDependency), as CI installs it.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json bunfig.toml ./
COPY scripts ./scripts
COPY src ./src
# .git is not in the build context: the commit --version reports comes in as a build argument.
ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=$GIT_COMMIT
RUN npm run -s build && ./dist/game-gateway --version

# Run: distroless "cc" has the glibc and libstdc++ the Bun executable links against, and nothing
# else (no shell, no package manager). Its "nonroot" tag runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/dist/game-gateway /app/game-gateway
USER 65532:65532
# server.listen_addr (game clients, TCP and WebSocket) and server.health_check_port (admin HTTP:
# /health, /ready, /metrics). With no --config the gateway loads config/config.yaml from this
# working directory, as the reference does: mount the config at /app/config/config.yaml.
EXPOSE 8080 9090
# SIGTERM starts the drain (/ready turns 503, the listener closes after server.drain_delay, live
# sessions get graceful_shutdown_timeout). Give it drain_delay + graceful_shutdown_timeout + a margin
# before the runtime kills: 0s + 30s + 15s with the defaults, e.g. `docker run --stop-timeout 45`
# or compose's `stop_grace_period: 45s` (an image cannot set its own grace period).
STOPSIGNAL SIGTERM
# No shell or curl in the image: the binary asks its own /health (exit 0 on 2xx).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/app/game-gateway", "healthcheck", "--url", "http://127.0.0.1:9090/health"]
ENTRYPOINT ["/app/game-gateway"]
