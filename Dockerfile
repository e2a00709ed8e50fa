# The playlog image used by docker-compose.yml (workers, sinks, API, CDN).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY schemas schemas
COPY topics topics
COPY processors processors
COPY worker worker
COPY sinks sinks
COPY batch batch
COPY replay replay
COPY playback playback
COPY ingest ingest
COPY registry registry
COPY devstack devstack
COPY demo demo
COPY benchmarks benchmarks
COPY playlog playlog
RUN pip install --no-cache-dir ".[stream,warehouse,audio]"
ENV PLAYLOG_DATA_DIR=/data
EXPOSE 8700 8701
CMD ["playlog", "--help"]
