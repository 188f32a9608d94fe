"""The bundled models are small, trained, and find the shapes in the sample images."""

from __future__ import annotations

import json

import pytest
from conftest import BUNDLED, MODELS, SAMPLES

from exportkit.shapes import CLASS_NAMES, label_lines, render


def test_bundled_models_fit_the_budget():
    assert sum(p.stat().st_size for p in BUNDLED.values()) < 20e6


@pytest.mark.parametrize("task", list(BUNDLED))
def test_recorded_accuracy_is_at_least_0_6(task):
    name = BUNDLED[task].stem
    metrics = json.loads((MODELS / "metrics.json").read_text())[name]
    assert metrics["task"] == task and metrics["box_map50"] >= 0.6


@pytest.mark.slow
@pytest.mark.parametrize("task", list(BUNDLED))
def test_every_sample_image_yields_detections(task):
    from ultralytics import YOLO

    model = YOLO(str(BUNDLED[task]))
    assert list(model.names.values()) == list(CLASS_NAMES)
    for result in model.predict([str(p) for p in SAMPLES], imgsz=192, conf=0.25, device="cpu", verbose=False):
        assert len(result.boxes) >= 1, result.path


def test_generator_is_deterministic_and_labels_are_normalised():
    a_image, a_shapes = render(7, 160, 120)
    b_image, b_shapes = render(7, 160, 120)
    assert (a_image == b_image).all() and len(a_shapes) == len(b_shapes) >= 1
    assert not (render(8, 160, 120)[0] == a_image).all()
    for task in ("detect", "segment", "pose"):
        for line in label_lines(a_shapes, task, 160, 120):
            fields = line.split()
            assert int(fields[0]) in range(len(CLASS_NAMES))
            coords = fields[1:5] + [v for i, v in enumerate(fields[5:]) if i % 3 < 2] if task == "pose" else fields[1:]
            assert all(0.0 <= float(v) <= 1.0 for v in coords)
            if task == "pose":
                assert len(fields) == 1 + 4 + 4 * 3 and fields[7::3] == ["2"] * 4
