# The mcp-fleet operator: `mcp-operator run` (kopf). The Helm chart (charts/mcp-fleet) runs this image.
#   docker build -f images/operator.Dockerfile -t mcp-fleet/operator:0.1.0 .
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11) and its venv module; the local test cluster
# passes the base it built with debootstrap (e2e/images/build.sh).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# A CA bundle for pip where a proxy re-signs TLS (a path inside the build; empty: the image's own bundle).
ARG PIP_CERT=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# kubernetes/aio is the official client's asyncio copy (68 MB with bytecode); the operator uses the
# synchronous client (kube.py) and kopf its own, so it is left out.
RUN python3 -m venv /opt/mcp-fleet
COPY pyproject.toml README.md /src/
COPY server /src/server
COPY operator /src/operator
RUN if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
 && /opt/mcp-fleet/bin/pip install --no-compile "/src[operator]" \
 && rm -rf /opt/mcp-fleet/lib/python3*/site-packages/kubernetes/aio \
 && /opt/mcp-fleet/bin/python -m compileall -q /opt/mcp-fleet/lib \
 && rm -rf /opt/mcp-fleet/lib/python3*/site-packages/pip /opt/mcp-fleet/lib/python3*/site-packages/setuptools \
    /opt/mcp-fleet/lib/python3*/site-packages/pkg_resources /opt/mcp-fleet/lib/python3*/site-packages/_distutils_hack \
    /opt/mcp-fleet/lib/python3*/site-packages/distutils-precedence.pth

FROM ${BASE_IMAGE}
COPY --from=build /opt/mcp-fleet /opt/mcp-fleet
# A named non-root user (65532, as in distroless images) that the chart and the operator run pods as.
RUN useradd --uid 65532 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mcp-fleet
ENV PATH=/opt/mcp-fleet/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
# 8080: /healthz (kopf's liveness endpoint); 9090: Prometheus /metrics.
EXPOSE 8080 9090
ENTRYPOINT ["mcp-operator"]
CMD ["run"]
