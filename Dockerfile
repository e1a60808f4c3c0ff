# One image for every service of docker-compose.yml: api, worker, beat, migrate, flows.
# The command picks the role: `doodle api` (default), `doodle worker`, `doodle db upgrade`...
FROM python:3.11-slim

# DOODLE_HOME: scratch space (celery beat's schedule); compose gives every service real URLs.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DOODLE_HOME=/var/lib/doodle \
    PORT=8000

# torch's CPU build: PyPI's default Linux wheel drags in several GB of CUDA libraries.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the pins change.
COPY requirements.txt ./
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -r requirements.txt

# The code (see .dockerignore), installed in place so the seed weights stay at
# /app/ml/seed for `doodle models import` in the migrate service.
COPY . .
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /var/lib/doodle --create-home doodle \
    && mkdir /var/lib/doodle/metrics \
    && chown -R doodle:doodle /var/lib/doodle

# Not root from here on.
USER doodle

EXPOSE 8000
# gunicorn on 0.0.0.0:$PORT; compose overrides the command for the other roles.
CMD ["doodle", "api"]
