# Build stage: full dependencies, TypeScript compiled to dist/.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY scripts/build.mjs scripts/build.mjs
# onnxruntime-node would fetch CUDA binaries from outside the registry: skipped (docs/scanner.md).
# package.json's allowScripts says so to npm 11.16 and later; this image's npm 10 reads the variable.
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm install --no-audit --no-fund
COPY tsconfig.json ./
COPY server server
COPY shared shared
COPY bench bench
RUN npm run build

# Runtime stage: production dependencies only (no TypeScript, no TensorFlow.js), and ONNX
# Runtime's library for this platform alone: about 190 MB of node_modules instead of 800.
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production VOUCH_DATA_DIR=/data
COPY package.json package-lock.json .npmrc ./
COPY scripts scripts
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm install --omit=dev --no-audit --no-fund \
  && node scripts/prune-platform-binaries.mjs \
  && npm cache clean --force \
  && mkdir -p /data && chown node:node /data
COPY --from=build /app/dist dist
COPY migrations migrations
COPY assets assets
USER node
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["node", "dist/server/cli/main.js"]
CMD ["serve"]
