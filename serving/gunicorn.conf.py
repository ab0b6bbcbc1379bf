"""gunicorn settings for the service (recsys serve passes -c with this file).

Environment: RECSYS_BIND (default 127.0.0.1:8000), RECSYS_WORKERS (default 2), RECSYS_THREADS
(per worker, default 8), RECSYS_TIMEOUT (30 s). Workers are forked from a master that imported
the app once (preload), so the model's memory is shared copy-on-write; SIGHUP restarts workers
gracefully, each on the version the service was last told to serve (serving.reload_token).

The workers share a run folder (RECSYS_RUN_DIR, a new temporary folder by default): the
Prometheus values of every worker (PROMETHEUS_MULTIPROC_DIR), so /metrics reports them all,
and the reload token (RECSYS_RELOAD_FILE), so a reload asked of one worker reaches every worker.
Both must be set before the app is imported: this file runs first.
"""

import gc
import os
import shutil
import tempfile
from pathlib import Path

# gunicorn reads this file again on SIGHUP: the run folder is chosen once, in the environment.
if not os.environ.get("RECSYS_RUN_DIR"):
    os.environ["RECSYS_RUN_DIR"] = tempfile.mkdtemp(prefix="recsys-serve-")
    os.environ["RECSYS_RUN_DIR_TEMPORARY"] = "1"
RUN_DIR = Path(os.environ["RECSYS_RUN_DIR"])
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    (RUN_DIR / "metrics").mkdir(parents=True, exist_ok=True)
    for stale in (RUN_DIR / "metrics").glob("*.db"):  # values of an earlier server in the same folder
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(RUN_DIR / "metrics")
os.environ.setdefault("RECSYS_RELOAD_FILE", str(RUN_DIR / "reload"))
# The registry is read only to load a model: MLflow opens a connection each time instead of
# keeping a pool, so no tracking-store connection of the master's is reused after the fork.
os.environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")

bind = os.environ.get("RECSYS_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("RECSYS_WORKERS", "2"))
# Threads, so that a client sending its request slowly holds one thread, not the worker: with
# sync workers four connections sending partial headers stalled /healthz and got both workers
# killed by the timeout. In production a buffering proxy (nginx) in front still belongs there
# (docs/api.md): it reads whole requests before they reach a worker.
worker_class = "gthread"
threads = int(os.environ.get("RECSYS_THREADS", "8"))
preload_app = True
timeout = int(os.environ.get("RECSYS_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Request lines up to gunicorn's largest: an over-long id in a URL gets the service's JSON 400
# (ids hold at most 128 characters), not gunicorn's page; beyond 8 KB gunicorn refuses it itself.
limit_request_line = 8190
max_requests = 0
accesslog = os.environ.get("RECSYS_ACCESS_LOG")  # None: no access log; "-" for stdout
errorlog = "-"
loglevel = os.environ.get("RECSYS_LOG_LEVEL", "info")
# One BLAS thread per worker: workers are the parallelism.
raw_env = ["OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"]


def when_ready(server):
    # No model from the registry nor from the local copy: nothing to serve, say why and stop.
    state = server.app.wsgi().extensions.get("recsys")
    if state is not None and not state.model.ready:
        server.log.error("no model to serve: %s", state.model.last_error)
        server.halt(reason="no model to serve", exit_status=3)
    # The master loaded the app to fork it but serves nothing: its model gauges are not a worker's.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid())
    # The loaded model is hundreds of thousands of objects that live as long as the process:
    # out of the garbage collector's sight, so collections in the workers stay short and do not
    # touch (and copy) the pages the workers share with the master.
    gc.freeze()


def post_worker_init(worker):
    state = worker.wsgi.extensions.get("recsys")
    if state is not None:
        state.events.after_fork()  # a database connection must not cross a fork: each worker opens its own
        # Before serving: the version the service was last told to serve (the reload token), not
        # necessarily the master's start-up model (a worker forked after a reload).
        state.model.follow()
        if state.model.ready:  # this worker's series of the model gauges
            loaded = state.model.current
            state.metrics.model_loaded(loaded.version, loaded.loaded_at, loaded.bundle.config)
        state.model.watch()  # follow reloads announced by the other workers


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get("RECSYS_RUN_DIR_TEMPORARY") == "1":
        shutil.rmtree(RUN_DIR, ignore_errors=True)
