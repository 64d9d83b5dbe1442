# syntax=docker/dockerfile:1
# nopesight-auth: production image. Node 22 runs the TypeScript sources directly
# (built-in type stripping), so there is no compile step.

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; argon2 ships prebuilt binaries.
# Falls back to `npm install` when `npm ci` rejects the lock file because a
# registry lacks an optional (Windows-only) dependency of a dev tool.
RUN (npm ci --omit=dev --no-audit --no-fund \
     || npm install --omit=dev --no-save --no-audit --no-fund) \
 && npm cache clean --force

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json ./
COPY --chown=node:node src ./src
COPY --chown=node:node views ./views
COPY --chown=node:node config ./config
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "src/main.ts"]
