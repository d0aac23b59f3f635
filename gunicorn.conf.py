"""Gunicorn settings: `gunicorn -c gunicorn.conf.py smarttickets.wsgi`. The default production
server is `smarttickets-serve` (granian, see smarttickets/serve.py); this one still works.

Tuned for the on-sale hot path (docs/onsale-performance.md): one worker per core, because each
process is held to one core by the GIL and PostgreSQL and Redis need the rest; many threads per
worker, because a hold request spends most of its time waiting for its group-commit batch, and
the more requests wait together, the larger (and cheaper per hold) the batches. Request threads
hold no database connection on the hot path, but other requests do: keep
workers x (threads + 2) within the database's connection budget.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# Keep-alive connections wait in the worker's poller, not in a thread: 512 fans per worker.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
backlog = 2048
timeout = 30
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then (leaks), not every few seconds of an on-sale: a restart drops
# the worker's queued batch and costs a second of CPU to import Django again.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "200000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESSLOG")  # unset: no access log on the hot path
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker):
    """Warm the worker before it takes requests (smarttickets.wsgi.warm_up)."""
    from smarttickets.wsgi import warm_up

    warm_up()
