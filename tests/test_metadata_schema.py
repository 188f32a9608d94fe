"""The committed JSON Schema accepts real metadata and rejects broken metadata."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from exportkit.metadata import read_metadata, validate_schema


@pytest.fixture(scope="module")
def metadata(exports):
    return read_metadata(exports.get("segment", "onnx"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "breakage",
    [
        lambda m: m.pop("class_names"),
        lambda m: m.pop("mask_resolution"),
        lambda m: m.update(export_format="caffe"),
        lambda m: m.update(input_shape=[192, 192]),
        lambda m: m.update(created_at="yesterday"),
        lambda m: m["preprocessing"].update(color_space="HSV"),
        lambda m: m["artifacts"][0].update(sha256="abc"),
        lambda m: m["output_layout"].pop("prototypes"),
    ],
    ids=[
        "no-class-names",
        "seg-without-mask-resolution",
        "bad-format",
        "short-input-shape",
        "bad-timestamp",
        "bad-colour-space",
        "bad-sha",
        "seg-without-prototypes",
    ],
)
def test_schema_rejects(metadata, breakage):
    validate_schema(metadata)
    broken = copy.deepcopy(metadata)
    breakage(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate_schema(broken)
