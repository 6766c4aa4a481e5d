# Production image for the inventory GraphQL API.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Unprivileged runtime user.
RUN groupadd --system --gid 10001 inventory \
 && useradd --system --uid 10001 --gid inventory --no-create-home \
      --home-dir /app --shell /usr/sbin/nologin inventory

WORKDIR /app

# README.md* is optional: it is copied only if present (pyproject may name it).
COPY pyproject.toml README.md* ./
COPY inventory/ ./inventory/
COPY migrations/ ./migrations/
COPY alembic.ini ./

RUN pip install --no-cache-dir . \
 && chown -R inventory:inventory /app

USER inventory

EXPOSE 8000

CMD ["inventory", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
