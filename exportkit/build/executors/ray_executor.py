"""A stale cell's export as one Ray task: `doit -n 4 -P thread export executor=ray address=HOST:PORT`.

doit stays the planner (up-to-date checks, skips, the lock); only a stale cell's action changes. The task runs the
guide's `export.py` contract on a worker (exportkit/build/executors/ray_worker.py) and ships back the exit code, the
log, metadata.json and the artifact files, or leaves them on a folder every node mounts (``shared=PATH``). Here,
the driver checks every file's sha256 against metadata.json, publishes into the cell's folder and (in
exportkit/build/cell.py) writes status.json and the build state: one writer.

Settings (`doit export NAME=VALUE`, or the environment variable):

- ``address`` / EXPORTKIT_RAY_ADDRESS: the cluster (HOST:PORT, ``auto``, or ``ray://HOST:10001``).
- ``shared`` / EXPORTKIT_RAY_SHARED: a folder every node and the driver mount; results are written there instead
  of travelling through the object store (large artifacts).
- ``resources`` / EXPORTKIT_RAY_RESOURCES: JSON, extra custom resources per format, ``"*"`` for every cell:
  ``{"*": {"exportkit": 1}, "onnx": {"fast": 1}}``.
- ``retries`` / EXPORTKIT_RAY_RETRIES: how often a task whose worker or node was lost is retried (default 3).
  An export that ran and failed (exit 1, 2 or 3) is never retried: it would fail the same way.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path

from exportkit.build.executors import Executor, ExportOutcome, register_executor
from exportkit.checkpoint import sha256_file
from exportkit.errors import EXIT_CONFIG_ERROR, EXIT_EXPORT_FAILED, ConfigError, ExportError
from exportkit.publish import EXPORT_FILES

log = logging.getLogger(__name__)
DEFAULT_RETRIES = 3


@register_executor
class RayExecutor(Executor):
    name = "ray"
    settings_from = {
        "address": ("address", "EXPORTKIT_RAY_ADDRESS"),
        "shared": ("shared", "EXPORTKIT_RAY_SHARED"),
        "resources": ("resources", "EXPORTKIT_RAY_RESOURCES"),
        "retries": ("retries", "EXPORTKIT_RAY_RETRIES"),
    }

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        self._lock = threading.Lock()  # `doit -n N -P thread`: cells of one process share the connection
        self._checkpoints: dict[tuple, object] = {}  # (path, size, mtime) -> its ObjectRef: one upload per model
        self._task = None
        self._unreachable: ConfigError | None = None

    def export(self, cell, command: list[str], log_path: Path) -> ExportOutcome:
        start = time.perf_counter()
        try:
            ray = self._connect()
            options = task_options(cell, self.settings, ray.cluster_resources())
            checkpoint = self._checkpoint_ref(ray, cell.checkpoint)
        except ConfigError as exc:
            log_path.write_text(f"exportkit: error: {exc.one_line()}\n")
            return ExportOutcome(EXIT_CONFIG_ERROR)
        from exportkit.build.cell import canonical

        markers = _markers()
        ref = self._task.options(**options).remote(
            checkpoint,
            cell.checkpoint.name,
            cell.format["name"],
            canonical(cell.export_config),
            self.settings.get("shared"),
            markers,
        )
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as exc:  # lost more often than `retries` allows, or cancelled
            log_path.write_text(f"exportkit: error: the Ray task for {cell.name} failed: {_first_line(exc)}\n")
            return ExportOutcome(EXIT_EXPORT_FAILED)
        return receive(cell, result, log_path, time.perf_counter() - start)

    def _connect(self):
        try:
            import ray
        except ModuleNotFoundError:
            raise ConfigError("executor=ray needs the ray package: pip install 'exportkit[ray]'") from None
        address = self.settings.get("address")
        if not address:
            raise ConfigError(
                "executor=ray needs the cluster's address: doit export executor=ray address=HOST:PORT "
                "(or EXPORTKIT_RAY_ADDRESS)"
            )
        with self._lock:
            if self._unreachable:  # said once per cell, tried once per process
                raise self._unreachable
            if not ray.is_initialized():
                try:
                    check_reachable(address)
                    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
                except (ConnectionError, ValueError, RuntimeError) as exc:
                    self._unreachable = ConfigError(
                        f"cannot connect to the Ray cluster at {address}: "
                        f"{_first_line(exc)}; is it running? (`ray status` there)"
                    )
                    raise self._unreachable from None
            if self._task is None:
                from exportkit.build.executors.ray_worker import export_on_worker

                self._task = ray.remote(export_on_worker)
        return ray

    def _checkpoint_ref(self, ray, path: Path):
        try:
            stat = Path(path).stat()
        except OSError as exc:
            raise ConfigError(f"checkpoint {path} cannot be read: {exc.strerror}") from None
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key not in self._checkpoints:
                self._checkpoints[key] = ray.put(Path(path).read_bytes())
            return self._checkpoints[key]


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT that accepts no TCP connection fails now (ray.init would retry it for minutes, cell after cell)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # `auto`, `ray://...`: Ray's own lookup
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"nothing accepts connections at {address} ({exc.strerror or exc})") from None


def task_options(cell, settings: dict, cluster: dict) -> dict:
    """The Ray task's options for ``cell``: its format's resources, the user's extra ones, the retry rules; a
    ConfigError when no node of the cluster (``cluster``: ray.cluster_resources()) has what it needs."""
    from exportkit.registry import get_format

    fmt = get_format(cell.format["name"])
    options = {
        "num_cpus": 1,
        "num_gpus": 1 if fmt.requires_gpu else 0,
        "resources": {},
        "max_retries": _retries(settings),
        "retry_exceptions": False,
    }
    if fmt.prediction_needs_macos and cell.export_config.get("include_validation"):
        options["resources"]["macos"] = 1  # converting works anywhere; predicting (validation) needs macOS
    extra = _user_resources(settings)
    options["resources"].update({**extra.get("*", {}), **extra.get(fmt.name, {})})
    needed = {"CPU": options["num_cpus"], "GPU": options["num_gpus"], **options["resources"]}
    missing = [name for name, amount in needed.items() if amount and cluster.get(name, 0) < amount]
    if missing:
        have = ", ".join(
            f"{k}={v:g}" for k, v in sorted(cluster.items()) if not k.startswith(("node:", "memory", "object_store"))
        )
        raise ConfigError(
            f"no node of the Ray cluster offers {', '.join(f'{m}={needed[m]:g}' for m in missing)} "
            f"for {cell.name} (the cluster has {have or 'nothing'}); add such a node or build this "
            "cell elsewhere"
        )
    return options


def receive(cell, result: dict, log_path: Path, seconds: float) -> ExportOutcome:
    """The worker's ``result`` for ``cell``: its log into ``log_path``; when the export succeeded, its files checked
    against metadata.json and published into the cell's folder."""
    from exportkit.build.cell import version_mismatch

    where = f"{result.get('node')} pid {result.get('pid')}"
    lines = [f"exportkit: exported on Ray node {where} ({seconds:.1f}s with the transfer)"]
    code = result["exit_code"]
    folder = Path(result["folder"]) if result.get("folder") else None
    try:
        mismatch = version_mismatch(result.get("versions"), cell.format["name"])
        if code == 0 and mismatch:
            raise ExportError(
                f"the worker's libraries differ from this machine's: {mismatch}; the cell key would "
                "record versions that did not build it (install the same versions on every node)"
            )
        if code == 0:
            files = result["files"] if folder is None else _read_folder(folder, json.loads(result["metadata"]))
            publish_checked(cell, result["metadata"], files)
    except ExportError as exc:
        lines.append(f"exportkit: error: {exc.one_line()}")
        code = EXIT_EXPORT_FAILED
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    log_path.write_text(result.get("log", "") + "\n".join(lines) + "\n")
    return ExportOutcome(code, versions=result.get("versions"))


def checked_files(metadata: dict, files: dict[str, bytes], checkpoint_sha256: str) -> dict[str, bytes]:
    """The files to publish: every artifact metadata.json lists, with its sha256, and exportkit's own files; an
    ExportError naming the first file that is missing, altered or has an unsafe path, or a foreign checkpoint."""
    import hashlib

    if metadata.get("checkpoint", {}).get("sha256") != checkpoint_sha256:
        raise ExportError("the worker exported another checkpoint than this cell's (sha256 differs); nothing published")
    wanted = {}
    for entry in metadata.get("artifacts", []):
        name = str(entry.get("path", ""))
        if not _safe_relative(name):
            raise ExportError(f"metadata.json lists an unsafe artifact path {name!r}; nothing published")
        if name not in files:
            raise ExportError(f"{name} did not come back from the worker; nothing published")
        if hashlib.sha256(files[name]).hexdigest() != entry.get("sha256"):
            raise ExportError(f"{name} came back altered (sha256 differs from metadata.json); nothing published")
        wanted[name] = files[name]
    return {**wanted, **{name: files[name] for name in EXPORT_FILES if name in files and name != "metadata.json"}}


def publish_checked(cell, metadata_text: str, files: dict[str, bytes]) -> None:
    """Check the shipped files, then publish them with metadata.json (its checkpoint path: this machine's) into the
    cell's folder, the way a local export does: under the folder's lock, staged, switched atomically."""
    from exportkit.metadata import write_metadata
    from exportkit.pipeline import _publish
    from exportkit.publish import folder_lock, make_staging, remove_stale

    metadata = json.loads(metadata_text)
    files = checked_files(metadata, files, sha256_file(cell.checkpoint))
    metadata["checkpoint"]["path"] = str(cell.checkpoint)  # validation loads the PyTorch model from here
    with folder_lock(cell.out):
        remove_stale(cell.out)
        staging = make_staging(cell.out)
        try:
            for name, data in files.items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).write_bytes(data)
            write_metadata(metadata, staging)
            _publish(staging, cell.out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _read_folder(folder: Path, metadata: dict) -> dict[str, bytes]:
    from exportkit.build.executors.ray_worker import exported_files

    return exported_files(folder, metadata)


def _safe_relative(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and not name.startswith(".")


def _retries(settings: dict) -> int:
    value = settings.get("retries", DEFAULT_RETRIES)
    try:
        retries = int(value)
    except ValueError:
        retries = -2
    if retries < -1:
        raise ConfigError(f"retries={value!r}: expected a whole number >= 0 (or -1: retry forever)")
    return retries


def _user_resources(settings: dict) -> dict[str, dict[str, float]]:
    text = settings.get("resources") or "{}"
    try:
        value = json.loads(text) if isinstance(text, str) else text
        if not all(
            isinstance(v, dict) and all(isinstance(n, (int, float)) for n in v.values()) for v in value.values()
        ):
            raise ValueError
    except (ValueError, AttributeError):
        raise ConfigError(
            f'resources={text!r}: expected JSON {{FORMAT or "*": {{RESOURCE: AMOUNT}}}}, '
            'e.g. \'{"*": {"exportkit": 1}}\''
        ) from None
    return value


def _markers() -> str | None:
    import os

    from exportkit.build.executors.ray_worker import MARKERS_ENV

    return os.environ.get(MARKERS_ENV) or None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
