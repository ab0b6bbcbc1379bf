#!/bin/sh
# The `recsys` command for the MLproject entry points, whichever way `mlflow run` is started:
# the one on PATH (an activated environment, or the one MLflow built from python_env.yaml),
# else this checkout's .venv (make install), so `.venv/bin/mlflow run . --env-manager local`
# works without activating anything.
here=$(cd "$(dirname "$0")/.." && pwd)
if command -v recsys >/dev/null 2>&1; then
    exec recsys "$@"
fi
if [ -x "$here/.venv/bin/recsys" ]; then
    exec "$here/.venv/bin/recsys" "$@"
fi
echo "recsys is not installed: run 'make install' (or pip install -e .) in $here first" >&2
exit 127
