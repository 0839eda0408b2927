# One image for every Node process of the platform (detector, worker, console); docker-compose.yml picks the
# entry point. Node 24 runs the TypeScript sources directly (type stripping): there is no build step.
# The Node release node_modules/.bin/node runs for ./dev (the `node` package in package-lock.json): bump together.
FROM node:24.21.0-slim

WORKDIR /app

# Dependencies first, so that a source change does not reinstall them. Runtime dependencies only: the dev ones
# (eslint, typescript, the `node` npm package, ...) are not needed to run.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error && npm cache clean --force

COPY . .

ENV NODE_ENV=production
# The worker's NDJSON exports (EXPORT_DIR, default .stack/exports): writable by the app user; docker-compose.yml
# mounts a volume here, which starts out with this ownership.
RUN mkdir -p .stack/exports && chown node:node .stack/exports
USER node

# Detector metrics/health, worker health, console.
EXPOSE 9464 9465 8080

# kafkajs schedules negative timeouts; Node 24 would warn on each (see package.json "detector").
CMD ["node", "--disable-warning=TimeoutNegativeWarning", "--max-semi-space-size=8", "detector/main.ts"]
