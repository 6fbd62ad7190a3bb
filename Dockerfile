# The `app` service of docker-compose.yml: the platform's own processes (`npm start`, which runs
# with STACK=external against the compose services). Not built on CI (no Docker engine there).
FROM node:20-bookworm

WORKDIR /app
RUN chown node:node /app
USER node

# Dependencies first, so a source change does not reinstall them. Dev dependencies are needed:
# `npm start` runs TypeScript through tsx.
COPY --chown=node:node package.json package-lock.json ./
# patches/: fixes to dependencies that `npm ci` applies (postinstall: patch-package; docs/dependencies.md).
COPY --chown=node:node patches ./patches
RUN npm ci --no-audit --no-fund

COPY --chown=node:node . .

ENV STACK=external
EXPOSE 18080
CMD ["npm", "start"]
