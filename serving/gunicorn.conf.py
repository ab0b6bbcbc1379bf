"""gunicorn settings for the service (recsys serve passes -c with this file).

Environment: RECSYS_BIND (default 127.0.0.1:8000), RECSYS_WORKERS (default 2),
RECSYS_TIMEOUT (30 s). Workers are forked from a master that imported the app once
(preload), so the model's memory is shared copy-on-write; SIGHUP reloads workers gracefully.
"""

import os

bind = os.environ.get("RECSYS_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("RECSYS_WORKERS", "2"))
worker_class = "sync"
threads = 1
preload_app = True
timeout = int(os.environ.get("RECSYS_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
max_requests = 0
accesslog = os.environ.get("RECSYS_ACCESS_LOG")  # None: no access log; "-" for stdout
errorlog = "-"
loglevel = os.environ.get("RECSYS_LOG_LEVEL", "info")
# One BLAS thread per worker: workers are the parallelism.
raw_env = ["OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"]
