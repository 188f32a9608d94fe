"""SAM2 without exporting: recognition from the peek (no torch), capability refusals, prompt encoding, mask
selection, letterbox and upscaling against Ultralytics' own, metadata against the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ENV, ROOT, run_export

from runtimes.python.errors import RuntimeInputError
from runtimes.python.sam2_process import encode_prompts, letterbox_image, plan_letterbox, select_masks, upscale_masks

POST = {
    "multimask_tokens": [1, 2, 3],
    "single_mask_token": 0,
    "dynamic_multimask_via_stability": {"delta": 0.05, "threshold": 0.98},
}
PRE = {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "color_space": "RGB", "pad_value": 114}


@pytest.fixture(scope="module")
def fake_sam2(tmp_path_factory) -> Path:
    """A tiny file shaped like a SAM2-t state dict (12 trunk blocks, a mask decoder): what the peek must recognise."""
    import torch

    keys = [f"image_encoder.trunk.blocks.{i}.attn.qkv.weight" for i in range(12)]
    keys += [
        "image_encoder.neck.convs.0.conv.weight",
        "sam_mask_decoder.iou_token.weight",
        "sam_prompt_encoder.no_mask_embed.weight",
    ]
    path = tmp_path_factory.mktemp("sam2") / "my_segmenter.pt"
    torch.save({"model": {k: torch.zeros(1) for k in keys}}, path)
    return path


def test_peek_recognises_a_sam2_state_dict_without_torch(fake_sam2):
    code = (
        "import sys; from pathlib import Path; from exportkit.checkpoint import peek_checkpoint; "
        "from exportkit.families import family_for_peek; p = peek_checkpoint(Path(sys.argv[1])); f = family_for_peek(p); "
        "print(f.name, f.architecture(p), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(fake_sam2)], capture_output=True, text=True, env=ENV, cwd=ROOT, check=True
    )
    assert out.stdout.split() == ["sam2", "sam2-t", "False"]


def test_yolo_checkpoints_stay_yolo():
    from exportkit.checkpoint import peek_checkpoint
    from exportkit.families import family_for_peek

    assert family_for_peek(peek_checkpoint(ROOT / "models" / "shapes-det.pt")).name == "yolo"
    assert family_for_peek({}).name == "yolo"


@pytest.mark.parametrize("fmt", ["coreml", "tflite"])
def test_coreml_and_tflite_refused_with_the_guides_reason(fake_sam2, tmp_path, fmt):
    proc = run_export(fake_sam2, fmt, tmp_path / "out")
    assert proc.returncode == 3, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("exportkit: error:") and "SAM2-t x" in line and ("CoreML" in line or "TFLite" in line)
    assert not (tmp_path / "out").exists()


def test_reduced_precision_and_other_sizes_refused_before_torch(fake_sam2, tmp_path):
    for config, words in (({"half": True}, "FP32 only"), ({"imgsz": 640}, "1024x1024")):
        proc = run_export(fake_sam2, "onnx", tmp_path / "out", config)
        assert proc.returncode == 3 and words in proc.stderr, proc.stderr


def test_tensorrt_without_a_gpu_fails_fast(fake_sam2, tmp_path):
    from exportkit.formats.tensorrt import gpu_present

    if gpu_present():
        pytest.skip("a GPU is present: tests/test_sam2.py would build the engines")
    proc = run_export(fake_sam2, "tensorrt", tmp_path / "out")
    assert proc.returncode == 1 and "TensorRT" in proc.stderr and "Traceback" not in proc.stderr


def test_tensorrt_profiles_cover_the_dynamic_axes():
    from exportkit.families.sam2_export import describe_parts, trt_profile_shapes

    shapes = trt_profile_shapes("decoder")
    dynamic = [t for t in describe_parts()["decoder"]["inputs"] if -1 in t["shape"]]
    assert {t["name"] for t in dynamic} == set(shapes)
    for t in dynamic:
        low, opt, high = shapes[t["name"]]
        assert all(a <= b <= c for a, b, c in zip(low, opt, high))
        assert [d for d, s in zip(low, t["shape"]) if s != -1] == [s for s in t["shape"] if s != -1]
    assert trt_profile_shapes("encoder") == {}


def test_capabilities_command_shows_the_sam2_row():
    out = subprocess.run(
        [sys.executable, "-m", "exportkit", "capabilities"], capture_output=True, text=True, env=ENV, cwd=ROOT
    )
    row = next(line for line in out.stdout.splitlines() if line.startswith("| SAM2-t"))
    assert row.split("|")[2:8] == [" ✅ ", " ⚠️ ", " ❌ ", " ❌ ", " ✅ ", " ⚠️ "]


def test_box_corners_come_first_and_everything_is_scaled():
    box = plan_letterbox((320, 480))  # gain 1024 / 480
    coords, labels = encode_prompts(box, points=[[10, 20]], labels=[0], boxes=[[1, 2, 3, 4]])
    gain = 1024 / 480
    assert labels.tolist() == [[2, 3, 0]]
    np.testing.assert_allclose(coords, np.array([[[1, 2], [3, 4], [10, 20]]]) * gain, rtol=1e-6)
    coords, labels = encode_prompts(box, points=[[1, 1], [2, 2], [3, 3]])  # (N, 2): N objects of one point
    assert coords.shape == (3, 1, 2) and labels.tolist() == [[1], [1], [1]]
    assert encode_prompts(box, points=[[[1, 1], [2, 2]]], labels=[[1, 0]])[1].tolist() == [[1, 0]]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"points": [[1, 2]], "labels": [1, 1]},
        {"points": [[np.nan, 2]]},
        {"points": [[1, 2]], "labels": [5]},
        {"boxes": [[1, 2, 3]]},
        {"points": [[1, 2], [3, 4]], "boxes": [[0, 0, 5, 5]]},
    ],
)
def test_bad_prompts_are_runtime_input_errors(kwargs):
    with pytest.raises(RuntimeInputError):
        encode_prompts(plan_letterbox((100, 100)), **kwargs)


def test_mask_selection_matches_sam2s_decoder():
    """select_masks against SAM2MaskDecoder's own _dynamic_multimask_via_stability on stable and unstable masks."""
    from types import SimpleNamespace

    import torch
    from ultralytics.models.sam.modules.decoders import SAM2MaskDecoder

    rng = np.random.default_rng(0)
    masks = rng.normal(size=(4, 4, 16, 16)).astype(np.float32)
    masks[0, 0] = 5.0  # token 0 far from 0: stable, kept
    masks[1, 0] = 0.01  # token 0 inside +-delta: unstable, the best multimask token instead
    iou = rng.random((4, 4)).astype(np.float32)
    decoder = SimpleNamespace(dynamic_multimask_stability_delta=0.05, dynamic_multimask_stability_thresh=0.98)
    decoder._get_stability_scores = lambda m: SAM2MaskDecoder._get_stability_scores(decoder, m)
    ref_m, ref_i = SAM2MaskDecoder._dynamic_multimask_via_stability(
        decoder, torch.from_numpy(masks), torch.from_numpy(iou)
    )
    got_m, got_i = select_masks(masks, iou, False, POST)
    np.testing.assert_array_equal(got_m, ref_m.numpy())
    np.testing.assert_array_equal(got_i, ref_i.numpy())
    assert select_masks(masks, iou, True, POST)[0].shape == (4, 3, 16, 16)


@pytest.mark.parametrize("hw", [(320, 480), (481, 211), (1024, 1024)])
def test_letterbox_matches_ultralytics_sam_preprocessing(hw):
    from ultralytics.data.augment import LetterBox

    image = np.random.default_rng(1).integers(0, 256, (*hw, 3), dtype=np.uint8)
    tensor, box = letterbox_image(image, PRE)
    boxed = LetterBox(1024, auto=False, center=False)(image=image)[..., ::-1].astype(np.float32)
    expected = ((boxed - np.array(PRE["mean"], np.float32)) / np.array(PRE["std"], np.float32)).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(tensor, expected, atol=1e-5)
    assert box.content_hw == (round(hw[0] * box.gain), round(hw[1] * box.gain))


def test_upscale_keeps_the_letterboxed_content_only():
    box = plan_letterbox((200, 400))  # content 512 x 1024: the top half of the input
    logits = -np.ones((1, 1, 256, 256), np.float32)
    logits[0, 0, :128, :128] = 1.0  # the left half of the content
    mask = upscale_masks(logits, box)[0, 0] > 0
    assert mask.shape == (200, 400)
    assert mask[:, :190].all() and not mask[:, 210:].any()


def test_sam2_metadata_matches_the_schema(tmp_path):
    import jsonschema

    from exportkit.families.sam2_export import artifact_files, describe_parts
    from exportkit.families.sam2_metadata import build_sam2_metadata
    from exportkit.metadata import validate_schema

    for name in artifact_files("openvino"):
        (tmp_path / name).write_bytes(b"x")
    checkpoint = tmp_path / "sam2_t.pt"
    metadata = build_sam2_metadata(
        variant="sam2-t",
        checkpoint=checkpoint,
        checkpoint_sha256="0" * 64,
        format_name="openvino",
        options={"include_validation": False},
        describe=describe_parts(),
        folder=tmp_path,
        versions={"exportkit": "0", "ultralytics": "0", "torch": "0"},
        multimask=False,
    )
    validate_schema(metadata)
    assert [a["path"] for a in metadata["artifacts"]] == ["encoder.xml", "encoder.bin", "decoder.xml", "decoder.bin"]
    assert (
        metadata["parts"]["decoder"]["file"] == "decoder.xml" and metadata["parts"]["encoder"]["file"] == "encoder.xml"
    )
    coords = next(t for t in metadata["parts"]["decoder"]["inputs"] if t["name"] == "point_coords")
    assert coords["shape"] == [-1, -1, 2] and coords["dynamic_axes"] == {"0": "num_objects", "1": "num_points"}
    assert (
        metadata["preprocessing"]["letterbox_center"] is False and metadata["postprocessing"]["mask_threshold"] == 0.0
    )
    for broken in (
        {"prompt": {**metadata["prompt"], "point_labels": {**metadata["prompt"]["point_labels"], "padding": 0}}},
        {"parts": {"encoder": metadata["parts"]["encoder"]}},
        {"artifacts": metadata["artifacts"][:1]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_schema(json.loads(json.dumps({**metadata, **broken})))


def test_the_sam2_matrix_cells_name_both_parts_and_the_zoo_checkpoint():
    from exportkit.build.cell import checkpoint_path
    from exportkit.build.matrix import matrix_cells

    cells = {c.format["name"]: c for c in matrix_cells("sam2")}
    assert set(cells) == {"onnx", "torchscript", "openvino"} and not any(c.skip_reason for c in cells.values())
    assert [p.name for p in cells["openvino"].targets()] == [
        "encoder.xml",
        "encoder.bin",
        "decoder.xml",
        "decoder.bin",
        "metadata.json",
    ]
    assert checkpoint_path(cells["onnx"].model).relative_to(ROOT / ".cache" / "zoo").as_posix() == "sam2-t/sam2_t.pt"


def test_sam2_thresholds_are_checked_before_torch(fake_sam2, tmp_path):
    from exportkit.errors import ConfigError
    from exportkit.families.sam2_validate import thresholds_for

    assert (
        thresholds_for({"sign_agreement": 0.5, "box_iou": 0.9})["sign_agreement"] == 0.5
    )  # YOLO keys: nothing to gate
    with pytest.raises(ConfigError, match="mask_iou"):
        thresholds_for({"mask_iuo": 0.9})
    proc = run_export(fake_sam2, "onnx", tmp_path / "out", {"validation": {"sign_agreemnt": 0.9}})
    assert proc.returncode == 3 and "unknown validation threshold 'sign_agreemnt'" in proc.stderr, proc.stderr
