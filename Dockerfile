# Touchpoint image: one image for every process (worker, connect, migrate, query...).
#   docker build -t touchpoint:0.1.0 .
#   docker run --env-file touchpoint.env touchpoint:0.1.0            # `touchpoint worker`
#   docker run --env-file touchpoint.env touchpoint:0.1.0 migrate    # any other subcommand
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, exactly this CPU build: a looser request pulls a multi-GB CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0

WORKDIR /opt/touchpoint
COPY pyproject.toml README.md ./
# Every folder that pyproject.toml maps under the `touchpoint` import root.
COPY cli ./cli
COPY core ./core
COPY schemas ./schemas
COPY models ./models
COPY connectors ./connectors
COPY pipeline ./pipeline
RUN pip install torch==2.13.0 . && python -c "import touchpoint.cli"

# Non-root; checkpoints and Faust's data dir live in the home folder (mount a volume there).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin touchpoint
USER touchpoint
WORKDIR /home/touchpoint
ENV TOUCHPOINT_DATA_DIR=/home/touchpoint/.touchpoint

# 6066: worker web server (/metrics /healthz /readyz); 9464: /metrics of `connect`; 8088: webhooks.
EXPOSE 6066 9464 8088
ENTRYPOINT ["touchpoint"]
CMD ["worker"]
