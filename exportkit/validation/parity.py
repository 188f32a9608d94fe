"""Comparisons between reference and exported outputs: raw tensors, matched detections, top-k candidates.

Each function returns ``Check`` rows (gathered, never raising); ``exportkit.validation.harness`` decides.
"""

from __future__ import annotations

import numpy as np

from exportkit.checkers import Check

MATCH_IOU = 0.5  # below this two boxes are not the same object


def _gate(name: str, criterion: str, value: float, limit, higher_is_better: bool, detail: str = "") -> Check:
    if limit is None:
        return Check(name, criterion, value, None, None, detail)
    ok = value >= limit if higher_is_better else value <= limit
    return Check(name, criterion, value, limit, bool(ok), detail)


def raw_checks(name: str, reference: list[np.ndarray], exported: list[np.ndarray], limits: dict) -> list[Check]:
    if len(reference) != len(exported):
        return [
            Check(
                name,
                "output_count",
                len(exported),
                len(reference),
                False,
                "exported model has a different number of outputs",
            )
        ]
    checks = []
    for i, (ref, out) in enumerate(zip(reference, exported)):
        if ref.shape != out.shape:
            checks.append(
                Check(
                    name,
                    f"output{i}.shape",
                    0,
                    None,
                    False,
                    f"exported {list(out.shape)} != reference {list(ref.shape)}",
                )
            )
            continue
        diff = np.abs(out.astype(np.float64) - ref)
        scale = float(np.abs(ref).max()) or 1.0
        a, b = ref.reshape(-1).astype(np.float64), out.reshape(-1).astype(np.float64)
        cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        checks += [
            _gate(name, f"output{i}.rel_max_abs_diff", float(diff.max()) / scale, limits["raw_rel_max_diff"], False),
            Check(name, f"output{i}.max_abs_diff", float(diff.max()), None, None),
            Check(name, f"output{i}.mean_abs_diff", float(diff.mean()), None, None),
            _gate(name, f"output{i}.cosine", cosine, limits["raw_cosine"], True),
        ]
    return checks


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def match_detections(ref, exp) -> tuple[list[tuple[int, int]], list[int], list[int], list[tuple[int, int]]]:
    """Greedy, highest reference confidence first: (matched, unmatched ref, unmatched exported, class mismatches)."""
    ious = box_iou(ref.boxes.astype(np.float64), exp.boxes.astype(np.float64))
    matched, class_mismatch, used = [], [], set()
    for i in np.argsort(-ref.scores):
        same = [
            j
            for j in range(len(exp))
            if j not in used and exp.class_ids[j] == ref.class_ids[i] and ious[i, j] >= MATCH_IOU
        ]
        if same:
            j = max(same, key=lambda k: ious[i, k])
            matched.append((int(i), j))
            used.add(j)
            continue
        other = [j for j in range(len(exp)) if j not in used and ious[i, j] >= MATCH_IOU]
        if other:
            j = max(other, key=lambda k: ious[i, k])
            class_mismatch.append((int(i), j))
            used.add(j)
    unmatched_ref = [i for i in range(len(ref)) if i not in {m[0] for m in matched + class_mismatch}]
    unmatched_exp = [j for j in range(len(exp)) if j not in used]
    return matched, unmatched_ref, unmatched_exp, class_mismatch


def detection_checks(
    name: str, ref, exp, limits: dict, conf: float, input_gain: float = 1.0
) -> tuple[list[Check], dict]:
    """Every reference detection matched to an exported one (box IoU, confidence, class; masks; keypoints)."""
    matched, lost, extra, wrong_class = match_detections(ref, exp)
    border = conf + limits["confidence_diff"]  # a detection this close to the threshold may fall either side
    lost_real = [i for i in lost if ref.scores[i] >= border]
    extra_real = [j for j in extra if exp.scores[j] >= border]
    checks = [
        Check(name, "boxes_compared", len(matched), 1, len(matched) > 0 or (len(ref) == 0 and len(exp) == 0)),
        Check(
            name,
            "class_mismatches",
            len(wrong_class),
            0,
            not wrong_class,
            "; ".join(
                f"{ref.class_names[ref.class_ids[i]]} became {exp.class_names[exp.class_ids[j]]}"
                for i, j in wrong_class
            ),
        ),
        Check(
            name,
            "unmatched_reference",
            len(lost_real),
            0,
            not lost_real,
            f"{len(lost) - len(lost_real)} more within {limits['confidence_diff']} of the threshold",
        ),
        Check(
            name,
            "unmatched_exported",
            len(extra_real),
            0,
            not extra_real,
            f"{len(extra) - len(extra_real)} more within {limits['confidence_diff']} of the threshold",
        ),
    ]
    if matched:
        ious = [float(box_iou(ref.boxes[[i]], exp.boxes[[j]])[0, 0]) for i, j in matched]
        diffs = [abs(float(ref.scores[i]) - float(exp.scores[j])) for i, j in matched]
        checks += [
            _gate(name, "box_iou_min", min(ious), limits["box_iou"], True),
            _gate(name, "confidence_diff_max", max(diffs), limits["confidence_diff"], False),
        ]
        if ref.masks is not None and exp.masks is not None:
            checks.append(
                _gate(
                    name,
                    "mask_iou_min",
                    min(_mask_iou(ref.masks[i], exp.masks[j]) for i, j in matched),
                    limits["mask_iou"],
                    True,
                )
            )
        if ref.keypoints is not None and exp.keypoints is not None:
            checks.append(
                _gate(
                    name,
                    "keypoint_px_max",
                    max(_keypoint_px(ref.keypoints[i], exp.keypoints[j]) for i, j in matched) * input_gain,
                    limits["keypoint_px"],
                    False,
                    "in model-input pixels",
                )
            )
    summary = {
        "mode": "detections",
        "boxes_compared": len(matched),
        "reference_detections": len(ref),
        "exported_detections": len(exp),
    }
    return checks, summary


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 0.0
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _keypoint_px(a: np.ndarray, b: np.ndarray) -> float:
    visible = a[:, 2] > 0.5 if a.shape[1] > 2 else np.ones(len(a), bool)
    if not visible.any():
        return 0.0
    return float(np.linalg.norm(a[visible, :2] - b[visible, :2], axis=1).max())


def top_k_checks(
    name: str, ref_pred: np.ndarray, exp_pred: np.ndarray, nc: int, limits: dict
) -> tuple[list[Check], dict]:
    """Compare the k highest-scoring candidates (anchors) when there is no detection to compare."""
    k = int(limits["top_k"])
    if ref_pred.shape != exp_pred.shape:
        return [Check(name, "top_k.shape", 0, None, False, f"{list(exp_pred.shape)} != {list(ref_pred.shape)}")], {
            "mode": "top_k",
            "boxes_compared": 0,
        }
    scores = ref_pred[0, 4 : 4 + nc].max(axis=0)
    top = np.argsort(-scores)[:k]
    to_xyxy = lambda p: np.stack([p[0] - p[2] / 2, p[1] - p[3] / 2, p[0] + p[2] / 2, p[1] + p[3] / 2], axis=1)  # noqa: E731
    ious = np.diag(box_iou(to_xyxy(ref_pred[0, :4, top].T), to_xyxy(exp_pred[0, :4, top].T)))
    diffs = np.abs(ref_pred[0, 4 : 4 + nc, top] - exp_pred[0, 4 : 4 + nc, top]).max(axis=1)
    same_class = ref_pred[0, 4 : 4 + nc, top].argmax(axis=1) == exp_pred[0, 4 : 4 + nc, top].argmax(axis=1)
    checks = [
        Check(name, "boxes_compared", len(top), 1, len(top) > 0, "top-k candidates (no reference detection)"),
        _gate(name, "box_iou_min", float(ious.min()), limits["box_iou"], True),
        _gate(name, "confidence_diff_max", float(diffs.max()), limits["confidence_diff"], False),
        Check(name, "class_mismatches", int((~same_class).sum()), 0, bool(same_class.all())),
    ]
    return checks, {"mode": "top_k", "boxes_compared": len(top)}
