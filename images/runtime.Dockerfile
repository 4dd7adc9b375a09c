# The bundled runtime with the demo app: `mcp-runtime serve --app mcp_runtime.examples.demo:app`.
#   docker build -f images/runtime.Dockerfile -t mcp-fleet/runtime:0.1.0 .
# Also the base for a server of your own (examples/own-server/Dockerfile): `pip` installs into the runtime's
# virtualenv, and /app (on PYTHONPATH) is the place for your code.
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11) and its venv module; the local test cluster
# passes the base it built with debootstrap (e2e/images/build.sh).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# A CA bundle for pip where a proxy re-signs TLS (a path inside the build; empty: the image's own bundle).
ARG PIP_CERT=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/mcp-fleet
COPY pyproject.toml README.md /src/
COPY server /src/server
RUN if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
 && /opt/mcp-fleet/bin/pip install --no-compile "/src[runtime]" \
 && /opt/mcp-fleet/bin/python -m compileall -q /opt/mcp-fleet/lib \
 && rm -rf /opt/mcp-fleet/lib/python3*/site-packages/setuptools \
    /opt/mcp-fleet/lib/python3*/site-packages/pkg_resources /opt/mcp-fleet/lib/python3*/site-packages/_distutils_hack \
    /opt/mcp-fleet/lib/python3*/site-packages/distutils-precedence.pth

FROM ${BASE_IMAGE}
COPY --from=build /opt/mcp-fleet /opt/mcp-fleet
# A named non-root user (65532, as in distroless images) that the chart and the operator run pods as.
RUN useradd --uid 65532 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mcp-fleet \
 && mkdir -p /app
# pip (the virtualenv's) is kept for images built FROM this one; PIP_* keep their installs small and quiet.
ENV PATH=/opt/mcp-fleet/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /app
USER 65532:65532
EXPOSE 8000
ENTRYPOINT ["mcp-runtime"]
CMD ["serve", "--app", "mcp_runtime.examples.demo:app", "--host", "0.0.0.0", "--port", "8000"]
