"""Architectures behind one registry: `create_model(name, **cfg)`; adding one touches only this file.

Every model takes a (B, 1, 48, 48) batch normalised to [-1, 1] and returns (B, 7) logits. A network
trained on smaller random crops (`crop`) is wrapped in `CropInput`; the custom CNNs size their head by
`side`, the input they see, and the torchvision backbones resize any input.
The torchvision backbones are wrapped by `GrayscaleAdapter` (channel repeat, ImageNet
normalisation, optional upsampling) so ImageNet weights transfer unchanged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PretrainedWeightsError
from ..labels import NUM_CLASSES

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_model(name: str, description: str):
    def wrap(factory):
        _REGISTRY[name] = factory
        _DESCRIPTIONS[name] = description
        return factory
    return wrap


def list_models() -> dict[str, str]:
    """Registered architecture names with a one-line description."""
    return dict(_DESCRIPTIONS)


def create_model(name: str, num_classes: int = NUM_CLASSES, pretrained: str | None = None,
                 crop: int | None = None, **cfg) -> nn.Module:
    """Build a registered architecture. `pretrained`: None, "imagenet" or a local state_dict path.

    `crop`: the network is trained on random crop x crop windows of the face (`train --crop`) and is
    wrapped in `CropInput`, so it still takes whole 48x48 faces."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown architecture '{name}': choose one of {', '.join(_REGISTRY)}")
    model = _REGISTRY[name](num_classes=num_classes, **({"side": crop} if crop else {}), **cfg)
    if pretrained:
        load_pretrained(model, name, pretrained)
    return CropInput(model, crop) if crop else model


class CropInput(nn.Module):
    """A network for side x side crops that takes whole faces: a 48x48 input is cut to its centre window.

    Training feeds random windows of that size directly; TTA's shifted views become shifted windows."""

    def __init__(self, net: nn.Module, side: int):
        super().__init__()
        self.net = net
        self.side = side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.side:
            top = (x.shape[-2] - self.side) // 2
            left = (x.shape[-1] - self.side) // 2
            x = x[..., top:top + self.side, left:left + self.side]
        return self.net(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- custom CNNs

def _conv_bn(cin: int, cout: int, k: int = 3, act: type[nn.Module] = nn.ReLU) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), act(inplace=True)]


@register_model("seed_cnn", "4 conv blocks (conv, BN, ReLU, dropout, max-pool) + 2 FC layers, as in the seed")
def seed_cnn(num_classes: int = NUM_CLASSES, dropout: float = 0.25, side: int = 48) -> nn.Module:
    """The seed's network: conv 64(3x3), 128(5x5), 512(3x3), 512(3x3); FC 256, 512; softmax at the loss."""
    layers: list[nn.Module] = []
    cin = 1
    for cout, k in ((64, 3), (128, 5), (512, 3), (512, 3)):
        layers += [*_conv_bn(cin, cout, k), nn.Dropout(dropout), nn.MaxPool2d(2)]
        cin = cout
    head: list[nn.Module] = [nn.Flatten()]
    fin = 512 * (side // 16) ** 2
    for fout in (256, 512):
        head += [nn.Linear(fin, fout, bias=False), nn.BatchNorm1d(fout), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        fin = fout
    head.append(nn.Linear(fin, num_classes))
    return nn.Sequential(*layers, *head)


@register_model("elu_cnn", "the seed's 'Custom Conv2D': ELU, batch-norm, max-pool, dropout, dense")
def elu_cnn(num_classes: int = NUM_CLASSES, dropout: float = 0.4, side: int = 48) -> nn.Module:
    """Three double-conv ELU stages (64, 128, 256), then dense 128 with ELU and batch-norm."""
    layers: list[nn.Module] = []
    cin = 1
    for cout, p in ((64, dropout * 0.75), (128, dropout), (256, dropout)):
        layers += [*_conv_bn(cin, cout, 3, nn.ELU), *_conv_bn(cout, cout, 3, nn.ELU),
                   nn.MaxPool2d(2), nn.Dropout(p)]
        cin = cout
    head = [nn.Flatten(), nn.Linear(256 * (side // 8) ** 2, 128, bias=False), nn.BatchNorm1d(128),
            nn.ELU(inplace=True),
            nn.Dropout(dropout + 0.2), nn.Linear(128, num_classes)]
    return nn.Sequential(*layers, *head)


class FERVGG(nn.Module):
    """VGG variant for 48x48 faces after Khaireddin & Chen (2021): four double-conv stages, two FC.

    `width` sets the first stage's channels (doubled at each stage). 64 is the flagship; 32 trains
    about 4x faster and is the one that fits a CPU budget.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 64, hidden: int = 512, dropout: float = 0.4,
                 side: int = 48):
        super().__init__()
        stages: list[nn.Module] = []
        cin = 1
        for i in range(4):
            cout = width * 2 ** i
            stages += [*_conv_bn(cin, cout), *_conv_bn(cout, cout), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin * (side // 16) ** 2, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("fer_vgg", "flagship: VGG variant for FER2013 (64-512 channels), aimed at 73% PrivateTest")
def fer_vgg(num_classes: int = NUM_CLASSES, **cfg) -> nn.Module:
    return FERVGG(num_classes, **{"width": 64, **cfg})


@register_model("fer_vgg_small", "the flagship at half width (32-256 channels): CPU-friendly")
def fer_vgg_small(num_classes: int = NUM_CLASSES, **cfg) -> nn.Module:
    return FERVGG(num_classes, **{"width": 32, "hidden": 256, **cfg})


# ----------------------------------------------------------------------------- torchvision backbones

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class GrayscaleAdapter(nn.Module):
    """Feeds our [-1, 1] grayscale 48x48 batch to an ImageNet-shaped backbone."""

    def __init__(self, backbone: nn.Module, input_size: int = 48):
        super().__init__()
        self.backbone = backbone
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        x = ((x + 1) / 2).expand(-1, 3, -1, -1)
        return self.backbone((x - self.mean) / self.std)


@register_model("vgg16", "torchvision VGG16 (transfer learning), compact classifier head")
def vgg16(num_classes: int = NUM_CLASSES, input_size: int = 48, dropout: float = 0.5, side: int = 48) -> nn.Module:
    from torchvision.models import vgg16 as tv_vgg16
    net = tv_vgg16(weights=None)
    # At 48x48 the features end at 1x1x512: the 25088->4096 ImageNet head would be 120M parameters
    # of replicated pixels, so it is replaced by a small head; the convolutional features transfer.
    net.avgpool = nn.AdaptiveAvgPool2d(1)
    net.classifier = nn.Sequential(nn.Flatten(), nn.Linear(512, 256), nn.ReLU(inplace=True),
                                   nn.Dropout(dropout), nn.Linear(256, num_classes))
    return GrayscaleAdapter(net, input_size)


@register_model("inception_v3", "torchvision InceptionV3 (transfer learning), input upsampled to 96x96")
def inception_v3(num_classes: int = NUM_CLASSES, input_size: int = 96, side: int = 48) -> nn.Module:
    from torchvision.models import inception_v3 as tv_inception_v3
    if input_size < 75:
        raise ValueError("inception_v3 needs an input of at least 75x75")
    net = tv_inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=num_classes)
    return GrayscaleAdapter(net, input_size)


@register_model("resnet18", "torchvision ResNet-18 (transfer learning), input upsampled to 96x96")
def resnet18(num_classes: int = NUM_CLASSES, input_size: int = 96, side: int = 48) -> nn.Module:
    from torchvision.models import resnet18 as tv_resnet18
    return GrayscaleAdapter(tv_resnet18(weights=None, num_classes=num_classes), input_size)


_IMAGENET_WEIGHTS = {"vgg16": "VGG16_Weights", "inception_v3": "Inception_V3_Weights", "resnet18": "ResNet18_Weights"}


def supports_pretrained(name: str) -> bool:
    return name in _IMAGENET_WEIGHTS


def load_pretrained(model: nn.Module, name: str, source: str | Path) -> None:
    """Load backbone weights: "imagenet" through torchvision's weights API, or a local state_dict.

    Layers whose shape differs (the classifier head) keep their fresh initialisation.
    """
    if name not in _IMAGENET_WEIGHTS:
        raise PretrainedWeightsError(f"'{name}' has no pretrained weights: it trains from scratch")
    if str(source) == "imagenet":
        state = _download_imagenet_state(name)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise PretrainedWeightsError(f"pretrained weights file not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch.load's many failure types on a file that is not a state_dict
            raise PretrainedWeightsError(f"{path} is not a readable PyTorch state_dict ({exc})") from None
        state = state.get("model", state) if isinstance(state, dict) else state
    target = model.backbone if isinstance(model, GrayscaleAdapter) else model
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    own = target.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise PretrainedWeightsError(f"no tensor in {source} matches the {name} architecture")
    target.load_state_dict(usable, strict=False)


def _download_imagenet_state(name: str) -> dict:
    import torchvision.models as tvm
    weights = getattr(tvm, _IMAGENET_WEIGHTS[name]).IMAGENET1K_V1
    filename = weights.url.rsplit("/", 1)[-1]
    target = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # URLError, socket errors, proxies: all mean "not reachable"
        raise PretrainedWeightsError(
            f"could not download ImageNet weights for {name} ({type(exc).__name__}: {exc}). "
            f"On a machine with internet, download {weights.url} and put it at {target} "
            f"(or pass --pretrained PATH to that file)") from None


def normalize_images(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (any shape) -> float in [-1, 1], the input every model expects."""
    return x.float().div_(127.5).sub_(1.0)
