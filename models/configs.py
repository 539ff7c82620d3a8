"""Pose network configs as data: `PoseNetConfig` (frozen; never mutated, `dataclasses.replace` makes variants)
and the named VARIANTS behind `models.create_model(name)`. No torch: the CLI reads these before any model work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .keypoints import COCO17, MPII16, KeypointSpec

ATTENTIONS = ("se", "eca")  # DEM channel attention (models.dem)
STYLES = ("lp", "pl")  # DySample offset styles (models.dysample)
UPSAMPLERS = ("nearest", "dysample")


@dataclass(frozen=True)
class PoseNetConfig:
    """Everything that defines a pose network and how its input and output are read.

    Sizes are (w, h). The four ablation models (HRNet, +DEM, +DySample, DE-HRNet) differ only in
    `upsample` and `dem_stages`.
    """

    name: str = "custom"
    width: int = 32
    input_size: tuple[int, int] = (288, 384)
    keypoints: KeypointSpec = COCO17
    stage_modules: tuple[int, int, int] = (1, 4, 3)
    num_blocks: int = 4
    upsample: str = "nearest"
    dysample_style: str = "lp"
    dysample_groups: int = 4
    dysample_dyscope: bool = False
    dem_stages: tuple[int, ...] = ()
    attention: str = "se"
    attention_reduction: int = 16
    dem_dropout: float = 0.1
    dem_scale_init: float = 1.0
    sigma: float = 3.0  # Gaussian sigma of the training heatmaps (codec)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # RGB, on [0, 1] pixels
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        problems = []
        if self.upsample not in UPSAMPLERS:
            problems.append(f"upsample must be one of {UPSAMPLERS}, got {self.upsample!r}")
        if self.dysample_style not in STYLES:
            problems.append(f"dysample_style must be one of {STYLES}, got {self.dysample_style!r}")
        if self.attention not in ATTENTIONS:
            problems.append(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if not set(self.dem_stages) <= {2, 3, 4}:
            problems.append(f"dem_stages must be a subset of (2, 3, 4), got {self.dem_stages}")
        w, h = self.input_size
        if w % 32 or h % 32 or w <= 0 or h <= 0:
            problems.append(f"input_size (w, h) must be positive multiples of 32, got {self.input_size} (as HxW "
                            f"{h}x{w}; e.g. 256x192)")
        if self.width <= 0 or self.width % self.dysample_groups:
            problems.append(f"width must be a positive multiple of dysample_groups, got {self.width}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def num_keypoints(self) -> int:
        return self.keypoints.num_keypoints

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(w, h) of the output heatmaps: 1/4 of the input."""
        return self.input_size[0] // 4, self.input_size[1] // 4

    @property
    def is_plain_hrnet(self) -> bool:
        return self.upsample == "nearest" and not self.dem_stages

    def baseline(self) -> PoseNetConfig:
        """The plain HRNet this config extends (same widths, input, keypoints)."""
        return replace(self, upsample="nearest", dem_stages=())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["keypoints"] = self.keypoints.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PoseNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        values = dict(d)
        if isinstance(values.get("keypoints"), dict):
            values["keypoints"] = KeypointSpec.from_dict(values["keypoints"])
        for key in ("input_size", "stage_modules", "dem_stages", "mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def _cfg(name: str, **kwargs) -> PoseNetConfig:
    return PoseNetConfig(name=name, **kwargs)


_DEHRNET = dict(upsample="dysample", dem_stages=(2, 3, 4))
_MPII = dict(keypoints=MPII16, input_size=(256, 256), sigma=2.0)

VARIANTS: dict[str, PoseNetConfig] = {
    "hrnet_w32_256x192": _cfg("hrnet_w32_256x192", width=32, input_size=(192, 256), sigma=2.0),
    "hrnet_w32_384x288": _cfg("hrnet_w32_384x288", width=32),
    "hrnet_w48_256x192": _cfg("hrnet_w48_256x192", width=48, input_size=(192, 256), sigma=2.0),
    "hrnet_w48_384x288": _cfg("hrnet_w48_384x288", width=48),
    "dehrnet_w32_256x192": _cfg("dehrnet_w32_256x192", width=32, input_size=(192, 256), sigma=2.0, **_DEHRNET),
    "dehrnet_w32_384x288": _cfg("dehrnet_w32_384x288", width=32, **_DEHRNET),
    "dehrnet_w48_256x192": _cfg("dehrnet_w48_256x192", width=48, input_size=(192, 256), sigma=2.0, **_DEHRNET),
    "dehrnet_w48_384x288": _cfg("dehrnet_w48_384x288", width=48, **_DEHRNET),
    # the two single-change ablation models of the paper
    "hrnet_dem_w32_384x288": _cfg("hrnet_dem_w32_384x288", width=32, dem_stages=(2, 3, 4)),
    "hrnet_dysample_w32_384x288": _cfg("hrnet_dysample_w32_384x288", width=32, upsample="dysample"),
    "hrnet_w32_mpii_256x256": _cfg("hrnet_w32_mpii_256x256", width=32, **_MPII),
    "dehrnet_w32_mpii_256x256": _cfg("dehrnet_w32_mpii_256x256", width=32, **_MPII, **_DEHRNET),
    # tiny: for tests and CPU experiments
    "dehrnet_w8_128x96": _cfg("dehrnet_w8_128x96", width=8, input_size=(96, 128), sigma=2.0, **_DEHRNET),
}
