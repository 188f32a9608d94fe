"""`exportkit k8s-job matrix=NAME --image IMAGE`: the matrix as Kubernetes Indexed Jobs (the guide's env-var contract).

What it prints (YAML, no cluster contacted, no kubernetes client):

- one ConfigMap (immutable, named by its content) holding the frozen, ordered buildable cells, one JSON list per
  resource profile (``cells-cpu.json``, ``cells-gpu.json``): each cell's checkpoint path inside the checkpoints
  volume, its format, its output folder inside the exports volume, its export config and the cell itself;
- one batch/v1 Job per resource profile (an Indexed Job has a single pod template, so cells that need a GPU run
  in their own Job): ``completionMode: Indexed``, ``completions`` = its cells, ``backoffLimitPerIndex``,
  ``restartPolicy: Never`` and a ``podFailurePolicy`` that fails an index at once on exit codes 1, 2 and 3
  (deterministic: a retry gives the same answer) and does not count disruptions (``DisruptionTarget``).

Skipped (impossible) cells are YAML comments, never indexes. Volume layout inside every pod:

    /exportkit/checkpoints   read-only; the project's checkpoints at their project-relative paths
    /exportkit/exports       the matrix's output root: <model>/<format>-<precision>/ per cell
    /exportkit/cells         the ConfigMap
    /exportkit/scratch       emptyDir: the pod's project folder, caches

With ``--pvc NAME`` both data volumes are one PersistentVolumeClaim (subPaths ``checkpoints`` and ``exports``);
without it they are hostPath folders: the project and its output root on the node (a one-node cluster that
mounts this folder: kind's extraMounts, ``minikube mount``, k3s on this machine).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from exportkit import project
from exportkit.build.cell import Cell, as_dict, canonical
from exportkit.errors import ConfigError, ExportkitError
from exportkit.registry import get_format

MOUNTS = {
    "checkpoints": "/exportkit/checkpoints",
    "exports": "/exportkit/exports",
    "cells": "/exportkit/cells",
    "scratch": "/exportkit/scratch",
}
CONTAINER = "export"
DETERMINISTIC_EXIT_CODES = [1, 2, 3]  # export failed, validation failed, configuration error: a retry changes nothing
# resources of a pod per profile; a format's facts pick the profile (requires_gpu -> gpu)
PROFILES = {
    "cpu": {"requests": {"cpu": "1", "memory": "3Gi"}, "limits": {"memory": "6Gi"}},
    "gpu": {"requests": {"cpu": "2", "memory": "6Gi"}, "limits": {"memory": "12Gi", "nvidia.com/gpu": 1}},
}


def profile_of(format_name: str) -> str:
    return "gpu" if get_format(format_name).requires_gpu else "cpu"


def checkpoint_in_volume(cell: Cell) -> str:
    """The cell's checkpoint as a path inside the checkpoints volume: its path relative to the project."""
    path = cell.checkpoint
    if not path.exists():
        raise ConfigError(
            f"cell {cell.name}: checkpoint {path} does not exist; the pods read it from the checkpoints "
            "volume, so it must exist here first"
        )
    shown = project.shown(path)
    if Path(shown).is_absolute():
        raise ConfigError(
            f"cell {cell.name}: checkpoint {path} is outside the project {project.root()}; copy it "
            "into the project (the checkpoints volume holds the project's checkpoints)"
        )
    return shown


def frozen_cell(cell: Cell, output_root: Path) -> dict:
    """One ConfigMap entry: what the pod's entry point needs (paths inside the volumes) and the cell for `collect`."""
    cell_config = {k: v for k, v in as_dict(cell).items() if k not in ("output_dir", "output_root", "skip_reason")}
    return {
        "name": cell.name,
        "checkpoint": checkpoint_in_volume(cell),
        "export_format": cell.format["name"],
        "output_dir": Path(cell.out).relative_to(output_root).as_posix(),
        "export_config": canonical(cell.export_config),
        "cell": cell_config,
    }


def plan_jobs(cells: list[Cell], output_root: Path) -> dict[str, list[dict]]:
    """{profile: frozen cells in matrix order}, buildable cells only."""
    jobs: dict[str, list[dict]] = {}
    for cell in cells:
        if not cell.skip_reason:
            jobs.setdefault(profile_of(cell.format["name"]), []).append(frozen_cell(cell, Path(output_root)))
    return jobs


def dns_name(*parts: str) -> str:
    name = "-".join(parts).lower()
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")
    return name[:63].rstrip("-")


def configmap(name: str, namespace: str, jobs: dict[str, list[dict]]) -> dict:
    data = {
        f"cells-{profile}.json": json.dumps(frozen, indent=1, sort_keys=True) + "\n" for profile, frozen in jobs.items()
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "immutable": True,
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "exportkit"}},
        "data": data,
    }


def volumes(pvc: str | None, configmap_name: str, output_root: Path) -> list[dict]:
    if pvc:
        data = [{"name": "data", "persistentVolumeClaim": {"claimName": pvc}}]
    else:
        data = [
            {"name": "checkpoints", "hostPath": {"path": str(project.root()), "type": "Directory"}},
            {"name": "exports", "hostPath": {"path": str(output_root), "type": "DirectoryOrCreate"}},
        ]
    return [*data, {"name": "cells", "configMap": {"name": configmap_name}}, {"name": "scratch", "emptyDir": {}}]


def volume_mounts(pvc: str | None) -> list[dict]:
    """The PVC's checkpoints/ and exports/ folders (subPaths of one volume), or the two hostPath volumes."""
    data = (
        [{"name": "data", "subPath": "checkpoints"}, {"name": "data", "subPath": "exports"}]
        if pvc
        else [{"name": "checkpoints"}, {"name": "exports"}]
    )
    return [
        {**data[0], "mountPath": MOUNTS["checkpoints"], "readOnly": True},
        {**data[1], "mountPath": MOUNTS["exports"]},
        {"name": "cells", "mountPath": MOUNTS["cells"], "readOnly": True},
        {"name": "scratch", "mountPath": MOUNTS["scratch"]},
    ]


def container_env(profile: str) -> list[dict]:
    """The entry point's inputs; JOB_COMPLETION_INDEX comes from Kubernetes itself (Indexed completion mode)."""
    scratch = MOUNTS["scratch"]
    values = {
        "EXPORTKIT_CELLS": f"{MOUNTS['cells']}/cells-{profile}.json",
        "EXPORTKIT_CHECKPOINTS": MOUNTS["checkpoints"],
        "EXPORTKIT_EXPORTS": MOUNTS["exports"],
        "EXPORTKIT_PROJECT": scratch,
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "False",
        "YOLO_CONFIG_DIR": f"{scratch}/ultralytics",
        "MPLCONFIGDIR": f"{scratch}/matplotlib",
        "HOME": scratch,
    }
    return [{"name": k, "value": v} for k, v in values.items()]


def job(
    name: str,
    namespace: str,
    image: str,
    profile: str,
    count: int,
    parallelism: int,
    backoff: int,
    pvc: str | None,
    configmap_name: str,
    output_root: Path,
) -> dict:
    container = {
        "name": CONTAINER,
        "image": image,
        "command": ["python", "-m", "exportkit.build.k8s_entry"],
        "workingDir": MOUNTS["scratch"],
        "env": container_env(profile),
        "resources": PROFILES[profile],
        "volumeMounts": volume_mounts(pvc),
    }
    labels = {"app.kubernetes.io/name": "exportkit", "exportkit/profile": profile}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": count,
            "parallelism": min(parallelism, count),
            "backoffLimitPerIndex": backoff,
            # the first matching rule wins: a pod evicted or preempted mid-export is retried whatever it exited with
            "podFailurePolicy": {
                "rules": [
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                    {
                        "action": "FailIndex",
                        "onExitCodes": {
                            "containerName": CONTAINER,
                            "operator": "In",
                            "values": DETERMINISTIC_EXIT_CODES,
                        },
                    },
                ]
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": volumes(pvc, configmap_name, output_root),
                },
            },
        },
    }


def manifest(
    cells: list[Cell],
    matrix: str,
    output_root: Path,
    image: str,
    namespace: str = "default",
    pvc: str | None = None,
    parallelism: int = 4,
    backoff: int = 1,
) -> tuple[list[dict], list[str]]:
    """(resources, header comment lines) for the matrix's cells."""
    jobs = plan_jobs(cells, output_root)
    if not jobs:
        raise ConfigError(f"matrix {matrix}: no buildable cell (every cell is skipped); nothing to run")
    digest = hashlib.sha256(canonical([image, jobs]).encode()).hexdigest()[:10]
    cm_name = dns_name("exportkit", matrix, "cells", digest)
    resources = [configmap(cm_name, namespace, jobs)]
    for profile, frozen in jobs.items():
        resources.append(
            job(
                dns_name("exportkit", matrix, profile),
                namespace,
                image,
                profile,
                len(frozen),
                parallelism,
                backoff,
                pvc,
                cm_name,
                output_root,
            )
        )
    return resources, comments(cells, jobs, matrix, pvc)


def comments(cells: list[Cell], jobs: dict[str, list[dict]], matrix: str, pvc: str | None) -> list[str]:
    built = sum(len(f) for f in jobs.values())
    lines = [
        f"exportkit k8s-job: matrix {matrix}, {len(cells)} cells: {built} buildable, "
        f"{len(cells) - built} skipped (comments below, not indexes)"
    ]
    for profile, frozen in jobs.items():
        lines.append(f"job {profile}: indexes 0..{len(frozen) - 1}")
        lines += [f"  {i}: {entry['name']}" for i, entry in enumerate(frozen)]
    lines += [f"skipped: {c.name}: {c.skip_reason}" for c in cells if c.skip_reason]
    checkpoints = sorted({entry["checkpoint"] for frozen in jobs.values() for entry in frozen})
    where = f"PVC {pvc}, folder checkpoints/" if pvc else f"hostPath {project.root()} (the project)"
    lines.append(f"checkpoints read from {where}:")
    lines += [f"  {c}" for c in checkpoints]
    lines.append(
        "afterwards: copy the exports volume to OUTPUT, then `exportkit collect OUTPUT`, `doit lock`, `doit verify`"
    )
    return lines


def to_yaml(resources: list[dict], header: list[str]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Multi-line strings (the ConfigMap's cells files) as literal blocks, readable in `kubectl get -o yaml`."""

    def string(dumper, value: str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, string)
    Dumper.ignore_aliases = lambda self, data: True  # the Job's labels twice, written out (no &id001)
    text = "".join(f"# {line}\n" for line in header)
    dump = lambda r: yaml.dump(r, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=120)  # noqa: E731
    return text + "".join("---\n" + dump(r) for r in resources)


def loader_pod(pvc: str, namespace: str) -> dict:
    """A pod that only mounts the PVC at /data, for `kubectl cp` of the checkpoints in and the exports out."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "exportkit-loader", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "loader",
                    "image": "busybox:1.36",
                    "command": ["sleep", "86400"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": pvc}}],
        },
    }


def main(argv: list[str]) -> int:
    """`exportkit k8s-job [matrix=NAME] [output=DIR] --image IMAGE [--namespace NS] [--pvc NAME] [--parallelism N]`."""
    from exportkit.cli import _Parser

    parser = _Parser(prog="exportkit k8s-job", description="Print the matrix as Kubernetes Indexed Jobs (YAML).")
    parser.add_argument("overrides", nargs="*", help="matrix=NAME (default: default), output=DIR (default: exports)")
    parser.add_argument("--image", help="a container image with exportkit installed (see the Dockerfile)")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--pvc", help="a PersistentVolumeClaim holding checkpoints/ and exports/ (default: hostPath)")
    parser.add_argument("--parallelism", type=int, default=4, help="pods at once per Job (default 4)")
    parser.add_argument(
        "--backoff-limit-per-index",
        type=int,
        default=1,
        help="retries of an index after a failure that is not exit 1/2/3 (a lost node, OOM); default 1",
    )
    parser.add_argument("--loader", action="store_true", help="print only a pod that mounts the PVC, for kubectl cp")

    def body() -> int:
        args = parser.parse_args(argv)
        if args.loader:
            if not args.pvc:
                raise ConfigError("--loader needs --pvc NAME (the pod mounts that claim)")
            print(
                to_yaml(
                    [loader_pod(args.pvc, args.namespace)], ["kubectl cp FILE exportkit-loader:/data/checkpoints/PATH"]
                ),
                end="",
            )
            return 0
        if not args.image:
            raise ConfigError(
                "--image IMAGE is required: a container image with exportkit installed (see the Dockerfile)"
            )
        if args.parallelism < 1 or args.backoff_limit_per_index < 0:
            raise ConfigError("--parallelism must be >= 1 and --backoff-limit-per-index >= 0")
        values = {"matrix": "default", "output": "exports"}
        for override in args.overrides:
            key, sep, value = override.partition("=")
            if not sep or key not in values:
                raise ConfigError(f"unknown argument {override!r}; expected matrix=NAME or output=DIR")
            values[key] = value
        from exportkit.build.matrix import matrix_cells

        output_root = project.resolve(values["output"])
        cells = matrix_cells(values["matrix"], output_root)
        resources, header = manifest(
            cells,
            values["matrix"],
            output_root,
            args.image,
            args.namespace,
            args.pvc,
            args.parallelism,
            args.backoff_limit_per_index,
        )
        sys.stdout.write(to_yaml(resources, header))
        return 0

    try:
        return body()
    except ExportkitError as exc:  # stdout stays what the command prints (YAML, one line per cell); errors on stderr
        print(f"exportkit: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
