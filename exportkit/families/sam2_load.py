"""SAM2 checkpoints: a plain state dict ({"model": state_dict}), scanned and loaded with weights_only=True."""

from __future__ import annotations

from pathlib import Path

from exportkit.errors import CheckpointError

# trunk blocks -> variant (Hiera stages: t 1+2+7+2, s 1+2+11+2, b+ 2+3+16+3, l 2+6+36+4)
VARIANTS_BY_BLOCKS = {12: "sam2-t", 16: "sam2-s", 24: "sam2-b", 48: "sam2-l"}
BUILDERS = {"sam2-t": "build_sam2_t"}  # the variants exportkit exports (the guide's table lists SAM2-t)
RECOGNISING_PREFIXES = ("image_encoder.trunk.", "sam_mask_decoder.")


def is_sam2_state_dict(keys: list[str]) -> bool:
    return all(any(k.startswith(prefix) for k in keys) for prefix in RECOGNISING_PREFIXES)


def variant_of(keys: list[str]) -> str:
    blocks = {k.split(".")[3] for k in keys if k.startswith("image_encoder.trunk.blocks.") and k.count(".") >= 4}
    return VARIANTS_BY_BLOCKS.get(len(blocks), f"sam2-{len(blocks)}blocks")


def load_sam2(path: Path):
    """``(SAM2Model in eval mode, variant)``; the file goes through exportkit.safe_load, never a plain torch.load."""
    import torch
    from ultralytics.models.sam import build

    from exportkit.safe_load import load_untrusted

    raw = load_untrusted(path)
    state = raw.get("model") if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"checkpoint {path} is not a SAM2 state dict ({{'model': {{name: tensor}}}})")
    variant = variant_of(list(state))
    if variant not in BUILDERS:
        raise CheckpointError(
            f"checkpoint {path}: {variant} is not exported by exportkit; supported: {', '.join(BUILDERS)}"
        )
    model = getattr(build, BUILDERS[variant])()
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit {variant}: {' '.join(str(exc).split())[:200]}") from None
    return model.float().eval(), variant


def build_seeded_checkpoint(path: Path, variant: str = "sam2-t") -> Path:
    """A deterministic (seeded, untrained) SAM2 checkpoint at ``path``, in fp16 like the published ones; cached."""
    path = Path(path)
    if path.exists():
        return path
    import torch
    from ultralytics.models.sam import build

    torch.manual_seed(0)
    model = getattr(build, BUILDERS[variant])()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save({"model": {k: v.half() for k, v in model.state_dict().items()}}, partial)
    partial.replace(path)
    return path
