# syntax=docker/dockerfile:1
# release-server as a distroless image: a builder stage makes the zipapp, the final stage
# holds only /app (that file and Granian) plus an empty /data owned by the nonroot user,
# on a bare Python 3.11.
# The zipapp is the S3 one (build/pyz.py --with s3: boto3 inside), so STORAGE_URL=s3://...
# works in the image as well as the /data volume. Granian, the fast engine, is a compiled
# extension a zipapp cannot hold: it is installed for the target platform in /app/site
# (build/native_site.py), which PYZ_SITE makes the pyz import, so ENGINE=auto serves on
# Granian; --engine hypercorn (ENGINE=hypercorn) still chooses Hypercorn.
#   scripts/build.sh                      # honours REGISTRY, IMAGE_NAME, TAG
#   docker run -p 8000:8000 -e AUTH_TOKEN=... -v release-data:/data IMAGE

# The pyz is the same for every platform: build it once, natively, for all of them.
# Granian's wheel is not: pip fetches the target's (TARGETARCH, which BuildKit sets;
# where it is empty, the build machine's).
FROM --platform=$BUILDPLATFORM python:3.11-slim AS builder
# Behind a firewall: --build-arg PIP_INDEX_URL=<your PyPI mirror> (hashes are still checked).
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TARGETARCH
WORKDIR /src
COPY build/requirements.txt build/requirements-s3.txt build/requirements-fast.txt build/
COPY build/pyz.py build/native_site.py build/
COPY release_server/ release_server/
# The pycs are compiled for this Python 3.11, the minor version the final stage runs.
RUN --mount=type=cache,target=/root/.cache/pip \
    python build/pyz.py --with s3 --output /out/app/release-server.pyz \
    && python build/native_site.py --arch "${TARGETARCH}" --output /out/app/site \
    && mkdir -p /out/data

FROM gcr.io/distroless/python3-debian12:nonroot
ARG REGISTRY=ghcr.io
ARG IMAGE_NAME=local/release-server
ARG TAG=dev
ARG VERSION=${TAG}
ARG REVISION=unknown
ARG SOURCE=https://github.com/${IMAGE_NAME}
LABEL org.opencontainers.image.title="release-server" \
      org.opencontainers.image.description="A small, self-hosted server for release packages with a GitHub-Releases-compatible API." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="https://${REGISTRY}/${IMAGE_NAME}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.ref.name="${TAG}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="gcr.io/distroless/python3-debian12:nonroot"

# Root's, read-only to the server: PYZ_SITE refuses a directory that others may write to.
COPY --from=builder /out/app /app
# A new volume takes the owner of the image's directory: nonroot (65532) can write to it.
COPY --from=builder --chown=65532:65532 /out/data /data
ENV STORAGE_PATH=/data HOST=0.0.0.0 PORT=8000 PYZ_SITE=/app/site
VOLUME /data
EXPOSE 8000
# nonroot, numeric: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-I", "-S", "/app/release-server.pyz", "healthcheck"]
ENTRYPOINT ["python3", "-I", "-S", "/app/release-server.pyz"]
