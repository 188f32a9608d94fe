"""The runtime's letterbox and normalisation against a reference built step by step with OpenCV:
resize (INTER_LINEAR), pad with copyMakeBorder, reorder channels, then (pixel - mean) / std in float32."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from runtimes.python.preprocess import Normalizer, _input_dtype, plan_letterbox
from runtimes.python.spec import Preprocessing


def pre(**overrides) -> Preprocessing:
    base = dict(
        height=32,
        width=48,
        layout="NCHW",
        color_space="RGB",
        mean=(0.0, 0.0, 0.0),
        std=(255.0, 255.0, 255.0),
        normalize=True,
        resize_mode="letterbox",
        pad_value=114,
        center=True,
        scale_up=True,
    )
    return Preprocessing(**{**base, **overrides})


def reference(image, p: Preprocessing) -> np.ndarray:
    plan = plan_letterbox(image.shape, (p.height, p.width), p.scale_up, p.center)
    resized = (
        cv2.resize(image, plan.new_size, interpolation=cv2.INTER_LINEAR)
        if image.shape[1::-1] != plan.new_size
        else image
    )
    top, bottom, left, right = plan.borders
    padded = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(p.pad_value,) * 3)
    if p.color_space == "RGB":
        padded = padded[..., ::-1]
    x = padded.astype(np.float32)
    if p.normalize:
        x = (x - np.array(p.mean, np.float32)) / np.array(p.std, np.float32)
    return x.transpose(2, 0, 1) if p.layout == "NCHW" else x


IMAGE = np.random.default_rng(0).integers(0, 256, (20, 50, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "p",
    [
        pre(),
        pre(layout="NHWC"),
        pre(color_space="BGR"),
        pre(mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 8.0)),
        pre(normalize=False, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 8.0)),
        pre(pad_value=0),
        pre(center=False),
        pre(scale_up=False, height=64, width=64),
        pre(height=20, width=50),
    ],
    ids=["default", "nhwc", "bgr", "mean-std", "no-normalize", "pad0", "top-left", "no-upscale", "same-size"],
)
def test_normalizer_matches_the_opencv_reference(p):
    tensor, (geometry,) = Normalizer(p).letterbox_batch([IMAGE])
    assert tensor.dtype == np.float32 and tensor.shape[0] == 1
    np.testing.assert_allclose(tensor[0], reference(IMAGE, p), rtol=1e-6, atol=1e-6)
    plan = plan_letterbox(IMAGE.shape, (p.height, p.width), p.scale_up, p.center)
    assert geometry == plan.geometry


def test_a_batch_holds_each_image_in_its_slot_and_casts_to_the_model_dtype():
    other = IMAGE[:, ::-1].copy()
    tensor, geometries = Normalizer(pre(), "float16").letterbox_batch([IMAGE, other])
    assert tensor.dtype == np.float16 and tensor.shape == (2, 3, 32, 48) and len(geometries) == 2
    np.testing.assert_allclose(tensor[1].astype(np.float32), reference(other, pre()), atol=1e-3)


def test_plan_letterbox_from_first_principles():
    # 20x50 (h, w) into 32x48: r = min(32/20, 48/50) = 0.96 -> 48x19 (round(19.2)); 13 rows of padding split 6 / 7
    plan = plan_letterbox((20, 50), (32, 48))
    assert plan.new_size == (48, 19) and plan.borders == (6, 7, 0, 0)
    assert plan.geometry.pad == (0, 6) and plan.geometry.ratio == pytest.approx((48 / 50, 19 / 20))
    assert plan.geometry.orig_shape == (20, 50)
    corner = plan_letterbox((20, 50), (32, 48), center=False)
    assert corner.borders == (0, 13, 0, 0) and corner.geometry.pad == (0, 0)
    small = plan_letterbox((10, 10), (64, 64), scale_up=False)
    assert small.new_size == (10, 10) and small.borders == (27, 27, 27, 27)
    assert plan_letterbox((10, 10), (64, 64)).new_size == (64, 64)
    thin = plan_letterbox((1000, 1), (32, 32))
    assert thin.new_size == (1, 32)  # never a zero-width image


def test_input_dtype_follows_the_artifact_input():
    class Input:
        def __init__(self, dtype):
            self.dtype = dtype

    class Spec:
        def __init__(self, dtype):
            self.inputs = (Input(dtype),)

    assert [_input_dtype(Spec(d)) for d in ("float32", "float16", "float64", "uint8", "int8")] == [
        np.float32,
        np.float16,
        np.float64,
        np.float32,
        np.float32,
    ]


def test_a_narrow_image_gets_every_padding_column_even_into_a_reused_buffer():
    # a 32x20 image into 32x48: no resize, 14 columns of padding each side (together wider than the image)
    p = pre()
    image = np.random.default_rng(1).integers(0, 256, (32, 20, 3), dtype=np.uint8)
    out = np.full((3, 32, 48), np.nan, np.float32)  # a buffer holding anything: every value must be written
    Normalizer(p).letterbox_into(image, out)
    np.testing.assert_array_equal(out, reference(image, p))


def test_odd_horizontal_padding_puts_the_extra_pixel_right_like_ultralytics():
    # a 50x20 image into 32x48: r = 0.64, 13 px wide, 35 px of padding: Ultralytics' round(17.5 -/+ 0.1) = 17 left, 18 right
    plan = plan_letterbox((50, 20, 3), (32, 48), True, True)
    assert plan.new_size == (13, 32) and plan.borders == (0, 0, 17, 18)
