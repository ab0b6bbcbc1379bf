"""The model a service process serves, its reloads, and what it does when the registry is away.

``ModelHolder.current`` is one immutable ``serving.model.Loaded``. A reload builds and warms a
new one beside it, then swaps the reference in one assignment: requests in flight keep the
object they started with. With several workers the swap is coordinated by the reload token
(serving.reload_token).

Every load from the registry is bounded in time and, when it succeeds, kept as a verified
local copy (registry.local_copy). A service that cannot reach the registry at start serves that
copy, says so in ``/readyz`` and ``/v1/model``, and keeps checking the registry; with neither it
does not start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from registry.loader import check_registry, load_bundle
from registry.local_copy import load_copy, save_copy
from serving.dependencies import Dependency
from serving.model import Loaded, prepare
from serving.reload_token import ReloadToken

logger = logging.getLogger(__name__)


class ModelNotReady(RuntimeError):
    """No model is loaded (yet)."""


class RegistryTimeout(RuntimeError):
    """The registry did not answer in time."""


class ModelHolder:
    """The loaded model of one process, and its reloads (see the module's docstring)."""

    def __init__(
        self,
        model_uri: str,
        tracking_uri: str,
        catalog_source: str | None,
        cache_entries: int = 0,
        reload_file: str | None = None,
        on_loaded: Callable[[Loaded], None] | None = None,
        *,
        local_copy: str | None = None,
        registry_timeout: float = 20.0,
        reload_delay: float | None = None,
    ):
        self.model_uri = model_uri
        self.cache_entries = cache_entries
        self.tracking_uri = tracking_uri
        self.catalog_source = catalog_source
        self.reload_file = Path(reload_file) if reload_file else None
        self.on_loaded = on_loaded
        self.local_copy = local_copy
        self.registry_timeout = registry_timeout
        self.reload_delay = reload_delay  # None: long enough for the other workers to load (from the load time)
        self.registry = Dependency("model registry", consequence="serving the model loaded before")
        self._current: Loaded | None = None
        self._pending: tuple[Loaded, float] | None = None
        self._lock = threading.Lock()
        token = ReloadToken.read(self.reload_file)
        self._seen = token.serial if token else None
        self._watcher: threading.Thread | None = None
        self.last_error: str | None = None

    # ------------------------------------------------------------- what is served

    @property
    def current(self) -> Loaded:
        pending = self._pending
        if pending is not None and time.time() >= pending[1]:
            self._activate()
        loaded = self._current
        if loaded is None:
            raise ModelNotReady(self.last_error or "the model is not loaded yet")
        return loaded

    @property
    def ready(self) -> bool:
        return self._current is not None

    def dependencies(self) -> dict:
        return {"model_registry": self.registry.as_dict()} if not self.registry.ok else {}

    def _set(self, fresh: Loaded) -> None:
        self._current, self._pending = fresh, None
        if self.on_loaded is not None:
            self.on_loaded(fresh)

    def _activate(self) -> None:
        with self._lock:
            pending = self._pending
            if pending is not None and time.time() >= pending[1]:
                self._set(pending[0])

    # ------------------------------------------------------------- loading

    @property
    def _copy_source(self) -> str:
        """Which model the local copy stands for: the URI asked for (the same at every start,
        whether the registry answers or not)."""
        return self.model_uri

    def _load(self, uri: str) -> Loaded:
        """``uri`` loaded within ``registry_timeout`` seconds (RegistryTimeout otherwise)."""
        if Path(uri).is_dir():
            return prepare(load_bundle(uri), uri, self.catalog_source, self.cache_entries, "directory")
        box: dict = {}

        def work():
            try:
                box["resolved"] = load_bundle(uri, self.tracking_uri)
            except BaseException as exc:  # handed to the caller
                box["error"] = exc

        t = threading.Thread(target=work, name="recsys-registry-load", daemon=True)
        t.start()
        t.join(self.registry_timeout)
        if t.is_alive():
            raise RegistryTimeout(
                f"the registry at {self.tracking_uri} did not answer within {self.registry_timeout:g} s"
            )
        if "error" in box:
            raise box["error"]
        self.registry.succeeded()
        return prepare(box["resolved"], self.model_uri, self.catalog_source, self.cache_entries, "registry")

    def _keep_copy(self, fresh: Loaded) -> None:
        if not self.local_copy or fresh.source != "registry" or fresh.path is None:
            return
        try:
            from registry.loader import ResolvedModel

            resolved = ResolvedModel(fresh.bundle, fresh.name, fresh.version, fresh.alias, fresh.quality_gate)
            save_copy(resolved, Path(fresh.path), self.local_copy, source=self._copy_source)
        except Exception as exc:  # serving goes on; the next start cannot fall back to this version
            logger.error("could not keep a local copy of version %s at %s: %s", fresh.version, self.local_copy, exc)

    def start(self) -> Loaded:
        """The first load: the registry, or else the verified local copy (the registry being down)."""
        with self._lock:
            try:
                fresh = self._load(self.model_uri)
            except Exception as exc:
                self.registry.failed(exc)
                fresh = self._from_copy(exc)
            else:
                self._keep_copy(fresh)
            self._set(fresh)
            self.last_error = None
        return fresh

    def _from_copy(self, exc: Exception) -> Loaded:
        error = f"loading {self.model_uri} failed: {exc}"
        if not self.local_copy or Path(self.model_uri).is_dir():
            self.last_error = error
            raise exc
        try:
            resolved, saved_at = load_copy(self.local_copy, source=self._copy_source)
        except Exception as copy_exc:
            self.last_error = f"{error}; and no usable local copy: {copy_exc}"
            raise RuntimeError(self.last_error) from None
        logger.error(
            "%s; serving the local copy of version %s (saved %s) until a reload reaches the registry",
            error,
            resolved.version,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(saved_at)),
        )
        return prepare(resolved, self.model_uri, self.catalog_source, self.cache_entries, "local copy")

    def reload(self, announce: bool = False) -> Loaded:
        """Load the current model and catalog, warm up, then swap (one reload at a time). With
        ``announce`` and other workers (a reload file), every worker swaps at the same moment,
        this call returning once it has."""
        with self._lock:
            t = time.perf_counter()
            try:
                fresh = self._load(self.model_uri)
            except Exception as exc:
                self.last_error = f"loading {self.model_uri} failed: {exc}"
                raise
            self.last_error = None
            self._keep_copy(fresh)
            if not (announce and self.reload_file):
                self._set(fresh)
                return fresh
            delay = self.reload_delay if self.reload_delay is not None else 2.0 + 2 * (time.perf_counter() - t)
            previous = self._current.pinned_uri or self._current.model_uri if self._current else None
            token = ReloadToken.new(fresh.pinned_uri or self.model_uri, previous, delay)
            try:
                token.write(self.reload_file)
                self._seen = token.serial
            except OSError as exc:  # this worker has the new model; the others keep theirs
                logger.error("reloaded, but could not tell the other workers through %s: %s", self.reload_file, exc)
                self._set(fresh)
                return fresh
            self._pending = (fresh, token.activate_at)
        time.sleep(max(0.0, token.activate_at - time.time()))
        self._activate()
        return fresh

    # ------------------------------------------------------------- following the others

    def follow(self) -> bool:
        """Serve what the reload token says (a worker forked after a reload, or a reload
        announced by another worker): load the pinned version, swap at the token's moment.
        True when a new token was followed."""
        token = ReloadToken.read(self.reload_file)
        if token is None or token.serial == self._seen:
            return False
        self._seen = token.serial  # one attempt per announcement
        current = self._current
        try:
            # a directory has no version: its token always means "read it again"
            if current is None or Path(token.model_uri).is_dir() or token.model_uri != current.pinned_uri:
                fresh = self._load(token.model_uri)
                with self._lock:
                    if time.time() >= token.activate_at:
                        self._set(fresh)
                    else:
                        if (
                            token.previous_uri
                            and current is not None
                            and token.previous_uri
                            not in (
                                current.pinned_uri,
                                current.model_uri,
                            )
                        ):
                            self._set(self._load(token.previous_uri))  # forked between announce and swap
                        self._pending = (fresh, token.activate_at)
        except Exception as exc:  # keep serving the model we have; /readyz stays ready
            logger.error("announced reload of %s failed: %s", token.model_uri, exc)
            return False
        return True

    check = follow  # the name the watcher and the tests use

    def watch(self, every: float = 1.0, registry_every: float = 30.0) -> None:
        """Follow the reload token every ``every`` seconds on a daemon thread; while the
        registry is unreachable, check it every ``registry_every`` seconds."""
        if self._watcher is not None or (self.reload_file is None and self.registry.ok):
            return

        def loop():
            last_registry = time.monotonic()
            while True:
                time.sleep(every)
                try:
                    self.follow()
                    if self._pending is not None:
                        self._activate()
                    if not self.registry.ok and time.monotonic() - last_registry >= registry_every:
                        last_registry = time.monotonic()
                        self._ping_registry()
                except Exception:  # never let the watcher die
                    logger.exception("reload watcher")

        self._watcher = threading.Thread(target=loop, name="recsys-reload-watcher", daemon=True)
        self._watcher.start()

    def _ping_registry(self) -> None:
        try:
            check_registry(self.tracking_uri)
        except Exception as exc:
            self.registry.failed(exc)
        else:
            self.registry.succeeded()  # the next reload loads from it
