"""The networks of the method: Pix2Pix's U-Net generator and PatchGAN discriminator, and the
ResNet34 context classifier (method.md sections 3 and 5).

The generator and the discriminator are layer-for-layer those of junyanz's
pytorch-CycleGAN-and-pix2pix (``UnetGenerator`` and ``NLayerDiscriminator`` with BatchNorm,
hence convolutions carry a bias only where no BatchNorm follows them). The U-Net is written
as explicit lists of down and up blocks instead of junyanz's recursive nesting; the
parameters, their shapes and the computation are the same (see :class:`UNetGenerator`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = [
    "UNetGenerator",
    "PatchDiscriminator",
    "init_weights",
    "build_classifier",
    "count_parameters",
]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements) of ``module``; buffers are not counted."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


class UNetGenerator(nn.Module):
    """Pix2Pix U-Net generator (junyanz ``UnetGenerator``, BatchNorm, ``use_dropout=True``).

    ``num_downs = log2(image_size)`` down blocks take the image to 1×1; as many up blocks take
    it back. With ``w = width`` the encoder widths are ``min(w·2^i, 8w)``, i.e. w, 2w, 4w, 8w,
    8w, … . Blocks (all convolutions 4×4, stride 2, padding 1):

    * ``downs[0]`` (outermost): conv(in → w), no norm, no bias.
    * ``downs[i]``: LeakyReLU(0.2) → conv → BatchNorm (conv without bias).
    * ``downs[-1]`` (innermost): LeakyReLU(0.2) → conv, no norm, no bias.
    * ``ups[0]`` (innermost): ReLU → conv-transpose(8w → 8w) → BatchNorm.
    * ``ups[j]``: ReLU → conv-transpose(2·c_in → c_out) → BatchNorm, on the concatenation
      ``[skip, previous up output]`` (skip first, as junyanz).
    * ``ups[-1]`` (outermost): ReLU → conv-transpose(2w → out) with bias → Tanh.

    The ``num_downs − 5`` intermediate 8w-wide up blocks (``ups[1 .. num_downs − 5]``) end with
    Dropout(``dropout``) after their BatchNorm, as junyanz: three at 256 px (the noise z of
    pix2pix), two at 128 px, one at 64 px and **none at 32 px** (the U-Net has only its fixed
    five levels there, so the generator is deterministic in training mode at 32 px). 32 px is
    the smallest size: below it the fixed outer levels no longer fit. ``dropout=0`` removes the
    Dropout modules altogether.

    The LeakyReLU/ReLU activations are in-place, as junyanz's. The in-place LeakyReLU of a
    down block rewrites the previous level's output, which is also the skip tensor, so the
    skip carries LeakyReLU(h) instead of h; because the consumer of the concatenation is the
    next up block's ReLU, and ReLU(LeakyReLU(h)) = ReLU(h), the result is the same either way.

    For 1 → 2 channels, 256 px and width 64 the network has 54,409,858 parameters.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        image_size: int = 256,
        width: int = 64,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if not isinstance(image_size, int) or not _is_power_of_two(image_size) or image_size < 32:
            raise ValueError(
                f"image_size must be a power of two >= 32 (the U-Net halves it down to 1x1), "
                f"got {image_size!r}"
            )
        if width < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError("width, in_channels and out_channels must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.image_size = image_size
        self.width = width
        self.dropout = dropout
        self.num_downs = image_size.bit_length() - 1  # log2(image_size)

        widths = [min(width * 2**i, width * 8) for i in range(self.num_downs)]
        last = self.num_downs - 1

        downs: list[nn.Module] = []
        for i, c_out in enumerate(widths):
            if i == 0:
                downs.append(nn.Sequential(_down_conv(in_channels, c_out)))
            elif i == last:
                downs.append(
                    nn.Sequential(nn.LeakyReLU(0.2, inplace=True), _down_conv(widths[i - 1], c_out))
                )
            else:
                downs.append(
                    nn.Sequential(
                        nn.LeakyReLU(0.2, inplace=True),
                        _down_conv(widths[i - 1], c_out),
                        nn.BatchNorm2d(c_out),
                    )
                )

        # Up block for level i maps the level-i feature map (width widths[i]) back to the
        # width of level i - 1 (or to out_channels at the outermost level).
        ups: list[nn.Module] = []
        n_dropout = self.num_downs - 5
        for j, i in enumerate(range(last, -1, -1)):
            c_in = widths[i] if i == last else 2 * widths[i]
            if i == 0:
                ups.append(
                    nn.Sequential(
                        nn.ReLU(inplace=True),
                        nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1, bias=True),
                        nn.Tanh(),
                    )
                )
                continue
            c_out = widths[i - 1]
            layers: list[nn.Module] = [
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
            ]
            if 1 <= j <= n_dropout and dropout > 0:
                layers.append(nn.Dropout(dropout))
            ups.append(nn.Sequential(*layers))

        self.downs = nn.ModuleList(downs)
        self.ups = nn.ModuleList(ups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = self.ups[0](skips[-1])
        for j in range(1, len(self.ups)):
            h = self.ups[j](torch.cat([skips[-1 - j], h], dim=1))
        return h


def _down_conv(c_in: int, c_out: int) -> nn.Conv2d:
    # junyanz: bias=use_bias, False with BatchNorm, for every down conv (the outermost and the
    # innermost, which have no norm, included).
    return nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False)


class PatchDiscriminator(nn.Module):
    """70×70 PatchGAN (junyanz ``NLayerDiscriminator`` with BatchNorm, ``n_layers=3``).

    C64 (no norm, conv with bias) → C128 → C256 (stride 2) → C512 (stride 1) → 1-channel conv
    (stride 1, with bias); 4×4 kernels, padding 1, LeakyReLU(0.2). Outputs raw logits, 30×30 for
    a 256×256 input. 2,765,633 parameters for 3 input channels and width 64.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        if n_layers < 1 or width < 1 or in_channels < 1:
            raise ValueError("in_channels, width and n_layers must be positive")
        self.in_channels = in_channels
        self.width = width
        self.n_layers = n_layers
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, 2, 1, bias=True),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(width * prev, width * mult, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(width * prev, width * mult, 4, 1, 1, bias=False),
            nn.BatchNorm2d(width * mult),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width * mult, 1, 4, 1, 1, bias=True),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@torch.no_grad()
def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix initialisation, in place: conv / conv-transpose weights N(0, gain), BatchNorm
    weights N(1, gain), their biases 0. Other modules are left as they are. Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def build_classifier(num_classes: int = 6, weights_path: str | Path | None = None) -> nn.Module:
    """torchvision ResNet34 for one-channel (luminance) input and ``num_classes`` outputs.

    Built with ``weights=None`` (nothing is ever downloaded); ``conv1`` becomes a 1-input-channel
    7×7/2 convolution, ``fc`` a 512 → ``num_classes`` layer: 21,281,478 parameters for 6 classes.
    ``weights_path`` optionally names a local file holding a state dict (or a dict with a
    ``"state_dict"`` entry, as written by :mod:`colourmodels.checkpoints`); a file that does not
    fit this network raises ``ValueError`` naming the offending keys.
    """
    from torchvision.models import resnet34

    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    model = resnet34(weights=None)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    if weights_path is not None:
        load_state_dict_checked(model, _read_state_dict(weights_path), source=str(weights_path))
    return model


def _read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means "not a weights file"
        raise ValueError(f"{path} is not a readable PyTorch weights file: {exc}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict")
    return obj


def load_state_dict_checked(
    model: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str = "state dict"
) -> None:
    """``model.load_state_dict(state_dict)`` with a readable ``ValueError`` listing missing,
    unexpected and wrongly-shaped keys instead of PyTorch's RuntimeError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: file {tuple(state_dict[k].shape)} vs network {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_head(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_head(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches {_head(shapes)}")
        raise ValueError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state_dict)


def _head(items: list[str], n: int = 5) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return "[" + ", ".join(items[:n]) + "]" + more
