"""Training and serving at 1x, 10x, 100x The Complete Journey: wall time per stage, peak memory,
bundle size, service start-up and worker memory, and the ratios between sizes.

A copy ``k`` of The Complete Journey is its households, baskets and offer events under new ids
(``customer_id + k * 10,000``, and so on); products, offers and the calendar are unchanged, so
n copies are n times the customers and lines of the same shop. ``--synthetic N`` makes the
synthetic generator's data with N customers instead.

Each size trains in a fresh process (``recsys train``, default options, its own tracking store
under the work directory) while a sampler reads the resident memory of the process and its
children every 0.2 s; the peak is their sum. The CPU time is the training process's and its
children's, user and system, from the kernel's accounting when it exits; CPU time over wall
time is how many of the machine's cores the training kept busy on average. Per stage: wall
time, the peak and the CPU time within the stage (from the nested MLflow runs' start and end;
the CPU time from the same samples). Then ``recsys serve`` (gunicorn, 2 workers) starts
on the registered version: seconds until ``/readyz`` answers, and each worker's RSS and PSS
(proportional set size: shared pages split between the processes that share them).

    python benchmarks/scale.py [--sizes 1 10 100] [--synthetic 100000] [--work /tmp/recsys-scale]

Targets (issue 19): 10x peak RSS <= 3 GiB, wall <= 10x the 1x time, bundle <= 100 MB; 100x <= 30
minutes at <= 16 GiB; service start <= 10 s at 10x.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))
STAGES = ("load", "features", "segmentation", "churn", "cf", "offers", "evaluate", "package", "register")
GIB = 1 << 30
from scale_data import replicate, synthetic  # noqa: E402  (beside this script)


class Sampler(threading.Thread):
    """Resident memory and CPU time (user and system seconds) of a process and its children,
    summed, every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.proc, self.every, self.samples, self.stop = psutil.Process(pid), every, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                rss = cpu = 0
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss
                        times = p.cpu_times()
                        cpu += times.user + times.system
                        if p is self.proc:  # children that ended and were waited for: their CPU stays counted
                            cpu += times.children_user + times.children_system
                self.samples.append((time.time(), rss, cpu))
            except psutil.Error:
                return
            self.stop.wait(self.every)

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        return max((rss for t, rss, _ in self.samples if start <= t <= end), default=0)

    def cpu(self, start: float, end: float) -> float:
        """CPU seconds between the last samples at or before ``start`` and ``end``."""
        at = [cpu for t, _, cpu in self.samples if t <= start] or [0.0]
        upto = [cpu for t, _, cpu in self.samples if t <= end] or [0.0]
        return upto[-1] - at[-1]


def _env(work: Path) -> dict:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_RUN")},
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "RECSYS_EVENTS_URL": "",
        "OPENBLAS_NUM_THREADS": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def train(data: Path, work: Path, extra: list[str]) -> dict:
    """Train in a fresh process; wall time, peak memory overall and per stage, bundle size."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = _env(work)
    command = [str(BIN / "recsys"), "train", "--data", str(data), "--events", "", *extra]
    t0, before = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(work / "train.log", "w") as log:
        proc = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid)
        sampler.start()
        code = proc.wait()
    sampler.stop.set()
    wall, after = time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)  # the process tree's, at its exit
    if code not in (0, 3):  # 3: trained and registered, the quality gate refused promotion
        # how far it got: each stage begun, its time and peak (a stage still running when the
        # process died, of the kernel's out-of-memory killer say, has no time)
        tail = (work / "train.log").read_text().splitlines()[-15:]
        reached = {
            n: {"seconds": round(v["seconds"]), "peak GiB": round(v["peak"] / GIB, 2)}
            for n, v in _stages(work, sampler).items()
        }
        raise SystemExit(
            f"recsys train on {data} exited {code} after {wall:.0f} s, peak {sampler.peak() / GIB:.2f} GiB; "
            f"stages: {json.dumps(reached)}\n" + "\n".join(tail)
        )
    return {"wall": wall, "peak": sampler.peak(), "cpu": cpu, "exit": code, **_runs(work, sampler)}


def _stages(work: Path, sampler: Sampler) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    stages = {}
    for run in runs:
        name = run.info.run_name
        if name in STAGES:
            start, end = run.info.start_time / 1e3, (run.info.end_time or time.time() * 1e3) / 1e3
            stages[name] = {
                "seconds": run.data.metrics.get("seconds", 0.0),
                "peak": sampler.peak(start, end),
                "cpu": sampler.cpu(start, end),
            }
    return stages


def _runs(work: Path, sampler: Sampler) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    stages = _stages(work, sampler)
    versions = client.search_model_versions("name='loyalty-offers'")
    version = max(versions, key=lambda v: int(v.version))
    bundle = _bundle_dir(work, version)
    files = {p.relative_to(bundle).as_posix(): p.stat().st_size for p in bundle.rglob("*") if p.is_file()}
    return {"stages": stages, "version": version.version, "bundle_bytes": sum(files.values()), "files": files}


def _bundle_dir(work: Path, version) -> Path:
    import mlflow
    from mlflow.artifacts import download_artifacts

    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    model = Path(download_artifacts(artifact_uri=f"models:/loyalty-offers/{version.version}"))
    found = [p.parent for p in model.rglob("bundle.json")]
    return found[0]


def serve(work: Path, version: str) -> dict:
    """Start `recsys serve` on the version: seconds to ready, and each worker's RSS and PSS."""
    from serving.auth import KeyStore
    from serving.probe import wait_http

    KeyStore(work / "keys.json").create("read", "scale")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **_env(work),
        "RECSYS_MODEL_URI": f"models:/loyalty-offers/{version}",
        "RECSYS_API_KEYS_FILE": str(work / "keys.json"),
        "RECSYS_EVENTS_URL": f"sqlite:///{work / 'events.db'}",
        "RECSYS_LOCAL_COPY": str(work / "served"),
    }
    t0 = time.time()
    with open(work / "serve.log", "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "recsys"), "serve", "--port", str(port), "--workers", "2"],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", proc, timeout=600)
        ready = time.time() - t0
        time.sleep(1.0)
        master = psutil.Process(proc.pid)  # recsys serve execs gunicorn: its master
        workers = [(w.memory_info().rss, w.memory_full_info().pss) for w in master.children()]
        return {"ready": ready, "workers": workers, "master_rss": master.memory_info().rss}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _stage(result: dict, name: str) -> str:
    """A stage's wall seconds, peak GiB and CPU seconds."""
    if name not in result["stages"]:
        return "-"
    s = result["stages"][name]
    return f"{s['seconds']:.0f} / {s['peak'] / GIB:.2f} / {s['cpu']:.0f}"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def report(results: dict) -> None:
    sizes = list(results)
    print()
    header = f"{'':34}" + "".join(f"{s:>22}" for s in sizes)
    print(header)
    rows = [
        ("wall time", lambda r: f"{r['wall']:.0f} s"),
        ("peak RSS", lambda r: f"{r['peak'] / GIB:.2f} GiB"),
        ("CPU time (cores busy)", lambda r: f"{r['cpu']:.0f} s ({r['cpu'] / r['wall']:.2f})"),
    ]
    for stage in STAGES:
        rows.append((f"  {stage} (s / GiB / CPU s)", lambda r, s=stage: _stage(r, s)))
    rows += [
        ("bundle", lambda r: _mb(r["bundle_bytes"])),
        ("service ready", lambda r: f"{r['serve']['ready']:.1f} s" if r.get("serve") else "-"),
        (
            "worker RSS / PSS (each)",
            lambda r: (
                " ".join(f"{a / 1e6:.0f}/{b / 1e6:.0f}" for a, b in r["serve"]["workers"]) if "serve" in r else "-"
            ),
        ),
    ]
    for label, fn in rows:
        print(f"{label:34}" + "".join(f"{fn(results[s]):>22}" for s in sizes))
    base = sizes[0]
    for s in sizes[1:]:
        r, b = results[s], results[base]
        print(
            f"{s} / {base}: wall {r['wall'] / b['wall']:.1f}x, CPU {r['cpu'] / b['cpu']:.1f}x, "
            f"peak RSS {r['peak'] / b['peak']:.1f}x, "
            f"bundle {r['bundle_bytes'] / b['bundle_bytes']:.1f}x"
        )
    for s in sizes:
        biggest = sorted(results[s]["files"].items(), key=lambda kv: -kv[1])[:5]
        print(f"{s} bundle's largest files: " + ", ".join(f"{n} {_mb(v)}" for n, v in biggest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 10], help="copies of The Complete Journey")
    parser.add_argument("--synthetic", type=int, nargs="*", default=[], help="synthetic customers")
    parser.add_argument("--source", default=str(ROOT / "data" / "completejourney"))
    parser.add_argument("--work", default="/tmp/recsys-scale")
    parser.add_argument("--no-serve", action="store_true")
    parser.add_argument("--train-args", default="", help="extra options for recsys train")
    args = parser.parse_args()
    work = Path(args.work)
    datasets = {}
    for n in args.sizes:
        t = time.time()
        datasets[f"{n}x"] = replicate(Path(args.source), work / "data" / f"cj{n}x", n)
        print(f"data {n}x: {time.time() - t:.0f} s", flush=True)
    for n in args.synthetic:
        datasets[f"syn{n}"] = synthetic(work / "data" / f"syn{n}", n)
    results = {}
    for name, data in datasets.items():
        print(f"training on {name} ...", flush=True)
        results[name] = train(data, work / "runs" / name, args.train_args.split())
        if not args.no_serve:
            results[name]["serve"] = serve(work / "runs" / name, results[name]["version"])
        print(json.dumps({k: v for k, v in results[name].items() if k != "files"}, default=str), flush=True)
    report(results)


if __name__ == "__main__":
    main()
