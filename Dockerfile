# One image for both Cloud Run services (api and audio); SERVICE_ROLE picks the routes.
# Build: infra/deploy.sh ENV build (Cloud Build, cloudbuild.yaml), or locally:
#   docker build -t ai4joy . && docker run -p 8080:8080 -e DJANGO_SECRET_KEY=... -e ALLOWED_HOSTS=localhost ai4joy
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    SERVICE_ROLE=all

WORKDIR /app

# A fixed, unprivileged user; nothing in /app is writable by it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY . .

# Hashed, compressed static files for WhiteNoise. AI4JOY_ENV=production selects the same
# manifest storage the services use at run time; the key is a throwaway build value.
RUN AI4JOY_ENV=production DJANGO_SECRET_KEY=build python manage.py collectstatic --noinput \
    && python -m compileall -q /app

USER app
EXPOSE 8080

# Docker/compose health check. Cloud Run ignores HEALTHCHECK: there the services declare
# their own HTTP startup and liveness probes on the same paths (infra/phases/services.sh,
# listed in infra/README.md). /health for the api role, /ws/health for audio; sent with
# the first ALLOWED_HOSTS entry as Host so that Django's host check passes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; role = os.environ.get('SERVICE_ROLE', 'all'); path = '/ws/health' if role == 'audio' else '/health'; host = (os.environ.get('ALLOWED_HOSTS') or 'localhost').split(',')[0].strip().lstrip('.') or 'localhost'; req = u.Request('http://127.0.0.1:%s%s' % (os.environ.get('PORT', '8080'), path), headers={'Host': host, 'X-Forwarded-Proto': 'https'}); sys.exit(0 if u.urlopen(req, timeout=4).status == 200 else 1)"]

# Exec form: the Python process is PID 1 and receives SIGTERM directly. With REDIS_URL set it runs
# one draining Daphne per vCPU on PORT (SERVE_PROCESSES overrides) and forwards SIGTERM to each.
CMD ["python", "-m", "ai4joy.serve"]
