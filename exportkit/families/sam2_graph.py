"""SAM2's two exportable parts as plain torch modules (imported only when exporting or validating).

Every deployment splits SAM2 the same way (samexporter, onnxruntime's SAM2 tools): an image encoder that runs
once per image, and a prompt decoder that runs per prompt. Video (memory attention) stays out: its RoPE uses
complex tensors ONNX cannot express.
"""

from __future__ import annotations

import types

import torch
from torch import nn

IMAGE_SIZE = 1024
MASK_INPUT_SIZE = 256
ENCODER_OUTPUTS = ("high_res_feats_0", "high_res_feats_1", "image_embed")
DECODER_INPUTS = (
    "high_res_feats_0",
    "high_res_feats_1",
    "image_embed",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
)
DECODER_OUTPUTS = ("masks", "iou_predictions")


def _layer_norm_2d(self, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm2d with the normalised shape read from the weight, not from ``x.shape[1:2]`` (not traceable)."""
    y = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (self.weight.shape[0],), self.weight, self.bias, self.eps)
    return y.permute(0, 3, 1, 2)


def _traceable(module: nn.Module) -> nn.Module:
    from ultralytics.nn.modules.transformer import LayerNorm2d

    for m in module.modules():
        if isinstance(m, LayerNorm2d):
            m.forward = types.MethodType(_layer_norm_2d, m)
    return module


def _without(module: nn.Module, names: tuple[str, ...]) -> nn.Module:
    """A shallow copy of ``module`` without the child modules ``names`` (shared weights, nothing copied)."""
    import copy

    trimmed = copy.copy(module)
    trimmed._modules = {k: v for k, v in module._modules.items() if k not in names}
    return trimmed


class SAM2ImageEncoder(nn.Module):
    """image (1,3,1024,1024), normalised -> high_res_feats_0, high_res_feats_1, image_embed, exactly as
    ``SAM2Predictor.get_im_features`` (conv_s0/conv_s1 applied, no_mem_embed added)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.image_encoder = _traceable(model.image_encoder)
        self.conv_s0 = model.sam_mask_decoder.conv_s0
        self.conv_s1 = model.sam_mask_decoder.conv_s1
        add = bool(model.directly_add_no_mem_embed)
        self.register_buffer("no_mem_embed", model.no_mem_embed.detach().reshape(1, -1, 1, 1) * float(add))
        self.levels = int(model.num_feature_levels)

    def forward(self, image: torch.Tensor):
        fpn = self.image_encoder(image)["backbone_fpn"][-self.levels :]
        return self.conv_s0(fpn[0]), self.conv_s1(fpn[1]), fpn[2] + self.no_mem_embed


class SAM2PromptDecoder(nn.Module):
    """Features + prompts -> all mask tokens' logits (N,4,256,256) and IoU predictions (N,4).

    Labels are embedded arithmetically (Ultralytics' PromptEncoder uses a boolean index_put ONNX cannot take);
    a padding point (label -1) is appended as SAM2Predictor does; mask_input must be 256x256 (the antialiased
    resize has no ONNX op). Choosing single or multimask outputs happens after, in the runtime.
    """

    def __init__(self, model) -> None:
        super().__init__()
        encoder = model.sam_prompt_encoder
        self.pe_layer = encoder.pe_layer
        self.mask_downscaling = _traceable(encoder.mask_downscaling)
        self.mask_decoder = _traceable(_without(model.sam_mask_decoder, ("conv_s0", "conv_s1")))  # the encoder's
        self.register_buffer("dense_pe", encoder.get_dense_pe().detach())
        label_embeds = [encoder.not_a_point_embed.weight] + [e.weight for e in encoder.point_embeddings]
        self.register_buffer("label_embeds", torch.cat(label_embeds).detach())  # rows: -1, 0, 1, 2, 3
        self.register_buffer("no_mask_embed", encoder.no_mask_embed.weight.detach().reshape(1, -1, 1, 1))
        self.input_hw = tuple(encoder.input_image_size)

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        coords = torch.cat([coords + 0.5, torch.zeros_like(coords[:, :1])], dim=1)
        labels = torch.cat([labels, -torch.ones_like(labels[:, :1])], dim=1)
        scale = torch.tensor([1.0 / self.input_hw[1], 1.0 / self.input_hw[0]], dtype=coords.dtype)
        embedding = self.pe_layer._pe_encoding(coords * scale)
        one_hot = (labels.unsqueeze(-1) == torch.arange(-1, 4, dtype=labels.dtype).reshape(1, 1, 5)).to(coords.dtype)
        not_pad = 1.0 - one_hot[..., :1]
        return embedding * not_pad + one_hot @ self.label_embeds

    def forward(
        self, high_res_feats_0, high_res_feats_1, image_embed, point_coords, point_labels, mask_input, has_mask_input
    ):
        sparse = self.embed_points(point_coords, point_labels.to(point_coords.dtype))
        has = has_mask_input.to(image_embed.dtype).reshape(-1, 1, 1, 1)
        dense = has * self.mask_downscaling(mask_input) + (1.0 - has) * self.no_mask_embed
        masks, iou, _, _ = self.mask_decoder.predict_masks(
            image_embeddings=image_embed,
            image_pe=self.dense_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            repeat_image=True,
            high_res_features=[high_res_feats_0, high_res_feats_1],
        )
        return masks, iou


def example_inputs(n: int = 1, p: int = 2, model=None):
    """Deterministic example tensors for tracing (shapes only matter)."""
    g = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    feats = (
        torch.randn(1, 32, 256, 256, generator=g),
        torch.randn(1, 64, 128, 128, generator=g),
        torch.randn(1, 256, 64, 64, generator=g),
    )
    prompts = (
        torch.rand(n, p, 2, generator=g) * IMAGE_SIZE,
        torch.ones(n, p, dtype=torch.float32),
        torch.zeros(n, 1, MASK_INPUT_SIZE, MASK_INPUT_SIZE),
        torch.zeros(n, dtype=torch.float32),
    )
    return image, (*feats, *prompts)


def build_parts(model):
    """(encoder, decoder) in eval mode, float32."""
    model = model.float().eval()
    return SAM2ImageEncoder(model).eval(), SAM2PromptDecoder(model).eval()
