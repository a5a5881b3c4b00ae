"""Saliency: where a network looked when it scored a class, as Grad-CAM maps (Captum's LayerGradCam).

Grad-CAM weighs a layer's feature maps by the class score's gradient and keeps the positive part. It is taken
at the last layer whose feature maps are still at least MIN_SIDE pixels wide (6x6 in fer_vgg_small; the 3x3
maps after the last pooling say little about a 48-pixel face) and upsampled to the face. Ensembles average
their members' maps, TTA averages its views' maps after mapping each back onto the face (mirror undone, shift
undone). Every map is scaled to [0, 1] by its maximum. Grad-CAM passes the model-randomisation test of
Adebayo et al. (2018): its maps change when the weights do (tests/evaluation/test_saliency.py).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..models.ensemble import EnsembleModel
from ..models.registry import CropInput, normalize_images
from .tta import MAX_SHIFT, VIEW_PLAN, make_views

MIN_SIDE = 6
BATCH = 128  # face views per backward pass


class SaliencyUnavailable(ValueError):
    """The model cannot be explained this way (an ONNX graph, or a network without convolutions)."""


def _networks(model: nn.Module) -> list[nn.Module]:
    return list(model.members) if isinstance(model, EnsembleModel) else [model]


def _explainable_copy(net: nn.Module, device: torch.device) -> nn.Module:
    """An fp32 copy whose activations are not in place: Captum's hooks need each layer's output intact."""
    net = copy.deepcopy(net).float().to(device).eval().to(memory_format=torch.contiguous_format)
    for module in net.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return net


def target_layer(net: nn.Module, side: int = 48) -> nn.Module:
    """The layer Grad-CAM is taken at: of the layers that run once per forward pass, the last whose output is a
    feature map at least MIN_SIDE wide on a side x side face (in fer_vgg_small the ReLU after the last 6x6
    convolution; in a ResNet the stage that ends at that size): post-activation maps, as Grad-CAM wants."""
    calls: dict[nn.Module, int] = {}
    order: list[tuple[nn.Module, int]] = []

    def record(module, _inputs, out):
        calls[module] = calls.get(module, 0) + 1
        if isinstance(out, torch.Tensor) and out.dim() == 4:
            order.append((module, min(out.shape[-2:])))
    hooks = [m.register_forward_hook(record) for m in net.modules() if m is not net]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 1, side, side, device=next(net.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    maps = [(m, s) for m, s in order if calls[m] == 1]
    if not maps:
        raise SaliencyUnavailable(f"{type(net).__name__} has no feature maps to take Grad-CAM at")
    wide = [m for m, s in maps if s >= MIN_SIDE]
    return wide[-1] if wide else maps[-1][0]


def _to_face(maps: torch.Tensor, net: nn.Module, side: int) -> torch.Tensor:
    """(B, 1, h, w) layer maps -> (B, side, side) on the face; a crop network's window sits at the centre."""
    from captum.attr import LayerAttribution
    window = net.side if isinstance(net, CropInput) else side
    maps = LayerAttribution.interpolate(maps, (window, window), "bilinear")[:, 0]
    if window == side:
        return maps
    top = (side - window) // 2
    out = maps.new_zeros(maps.shape[0], side, side)
    out[:, top:top + window, top:top + window] = maps
    return out


def _view_back(maps: torch.Tensor, views: int) -> torch.Tensor:
    """(V*B, H, W) maps of make_views' views -> (V, B, H, W) on the original faces (mirror and shift undone)."""
    v_maps = maps.view(views, -1, *maps.shape[-2:])
    h, w = maps.shape[-2:]
    out = []
    for (flip, dx, dy), m in zip(VIEW_PLAN[:views], v_maps):
        m = m.flip(-1) if flip else m
        # view[y, x] showed face[y + dy, x + dx] (make_views' replicate padding beyond the edge)
        canvas = m.new_zeros(m.shape[0], h + 2 * MAX_SHIFT, w + 2 * MAX_SHIFT)
        canvas[:, MAX_SHIFT + dy:MAX_SHIFT + dy + h, MAX_SHIFT + dx:MAX_SHIFT + dx + w] = m
        out.append(canvas[:, MAX_SHIFT:MAX_SHIFT + h, MAX_SHIFT:MAX_SHIFT + w])
    return torch.stack(out)


def _unit_max(maps: torch.Tensor) -> torch.Tensor:
    peak = maps.flatten(1).amax(1).clamp_min(1e-12)
    return maps / peak.view(-1, *([1] * (maps.dim() - 1)))


def saliency_maps(model: nn.Module, faces: np.ndarray, targets, views: int = 1,
                  device: str | torch.device = "cpu", progress=None) -> np.ndarray:
    """Grad-CAM maps (N, H, W) in [0, 1] of uint8 faces (N, H, W) for the class indices `targets` (N,).

    `model`: a PyTorch network or EnsembleModel (an ONNX graph raises SaliencyUnavailable); `views` > 1 averages
    the TTA views, mapped back onto the face. `progress(done, total)` counts faces, an ensemble's once per member."""
    from captum.attr import LayerGradCam
    from ..models.onnx import OnnxModel
    if isinstance(model, OnnxModel):
        raise SaliencyUnavailable("saliency maps need the PyTorch checkpoint (.pt or an ensemble's .json), "
                                  "not an ONNX export")
    device = torch.device(device)
    faces = np.asarray(faces)
    targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    n, side = len(faces), faces.shape[-1]
    if n == 0:
        return np.zeros((0, *faces.shape[1:]), np.float32)
    chunk = max(1, BATCH // views)
    total = torch.zeros(n, *faces.shape[1:])
    nets = _networks(model)
    for k, net in enumerate(nets):
        net = _explainable_copy(net, device)
        cam = LayerGradCam(net, target_layer(net, side))
        for start in range(0, n, chunk):
            x = normalize_images(torch.from_numpy(np.ascontiguousarray(faces[start:start + chunk])).to(device)
                                 .unsqueeze(1))
            t = targets[start:start + chunk].to(device)
            x_views = make_views(x, views) if views > 1 else x
            maps = cam.attribute(x_views, target=t.repeat(views), relu_attributions=True).detach()
            maps = _view_back(_to_face(maps.float(), net, side), views).mean(0)
            total[start:start + chunk] += _unit_max(maps).cpu()
            if progress is not None:
                progress(k * n + min(start + chunk, n), n * len(nets))
    return _unit_max(total / len(nets)).numpy().astype(np.float32)


def class_mean_maps(model: nn.Module, faces: np.ndarray, labels: np.ndarray, device="cpu",
                    num_classes: int = 7, progress=None) -> np.ndarray:
    """(K, H, W): for each class, the mean Grad-CAM map of that class over the faces labelled with it (zeros for
    a class without faces): where the network finds each emotion, on average."""
    labels = np.asarray(labels)
    maps = saliency_maps(model, faces, labels, 1, device, progress)
    out = np.zeros((num_classes, *faces.shape[1:]), np.float32)
    for k in range(num_classes):
        if (labels == k).any():
            out[k] = maps[labels == k].mean(0)
    return out
