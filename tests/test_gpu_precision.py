"""fp16 against fp32 on CUDA: heatmaps of HRNet-W32 and DE-HRNet-W32 384x288 at batch 1, 8 and 64, and the
keypoints of the accuracy guard's trained model (the issue's target: within 0.1 px on 99 % of joints).

The W32 networks have random weights (randomize + calibrate_bn, so activations are of order one), and a random
deep network amplifies rounding: measured on the CPU, bf16 (8x coarser than fp16) moved a random HRNet-W32's
heatmaps by 23 % (relative L2) with the argmax kept on 29 % of joints, and rounding only the input to fp16 moved
them by 1 %. So the W32 test records its numbers and fails only on what no rounding explains (a relative
error above 20 %, non-finite values); the accuracy target is asserted on the trained model. The fp32
reference runs with TF32 off (cuDNN's default for fp32 convolutions is TF32)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import GPU, calibrate_bn, randomize

from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.codec import HeatmapCodec
from models import create_model

pytestmark = GPU

W32 = ("hrnet_w32_384x288", "dehrnet_w32_384x288")


@pytest.fixture(scope="module")
def networks() -> dict[str, torch.nn.Module]:
    return {name: calibrate_bn(randomize(create_model(name), seed=1), (384, 288), seed=1) for name in W32}


@pytest.fixture
def strict_fp32():
    """True fp32 convolutions and matrix products for the reference (no TF32)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("name", W32)
def test_fp16_heatmaps_follow_fp32(networks, name: str, strict_fp32, record_property) -> None:
    fp32 = TorchBackend(copy.deepcopy(networks[name]), "cuda", precision="fp32")
    fp16 = TorchBackend(copy.deepcopy(networks[name]), "cuda", precision="fp16")
    generator = torch.Generator().manual_seed(0)
    crops = torch.randn(64, 3, 384, 288, generator=generator).cuda()
    for batch in (1, 8, 64):
        ref, half = fp32.forward(crops[:batch]), fp16.forward(crops[:batch])
        assert torch.isfinite(half).all()
        relative = float((half - ref).norm() / ref.norm())
        max_diff = float((half - ref).abs().max())
        codec = HeatmapCodec(fp32.config.input_size, fp32.config.heatmap_size, fp32.config.sigma)
        ref_xy, _ = codec.decode(ref)
        half_xy, _ = codec.decode(half)
        same_argmax = float((ref.flatten(2).argmax(2) == half.flatten(2).argmax(2)).float().mean())
        within = float(((half_xy - ref_xy).norm(dim=2) * 4 <= 0.1).float().mean())  # input pixels
        for key, value in (("relative_error", relative), ("max_abs_diff", max_diff), ("argmax_agreement", same_argmax),
                           ("within_0.1px", within)):
            record_property(f"{name}_b{batch}_{key}", value)
        assert relative < 0.2, f"batch {batch}: fp16 heatmaps {relative:.2e} away from fp32 (relative L2)"


def test_fp16_keypoints_of_the_trained_guard_model(strict_fp32, record_property) -> None:
    """The guard's model (dehrnet_w8_128x96 trained on synthetic people), fp16 CUDA against fp32 CUDA on its
    100 held-out scenes, flip test on: image-pixel keypoint distances, and the guard's own verdict."""
    from dehrnet_cli.datasets.synthetic import SyntheticPeople
    from dehrnet_cli.eval.pck import dataset_keypoints
    from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
    from dehrnet_cli.precision.guard import GUARD_IMAGES, HELD_OUT_SEED, compare_backends, guard_model_path
    from models import load_model

    trained = guard_model_path()
    if not trained.is_file():
        pytest.skip(f"the guard's trained model is not here ({trained}); scripts/gpu_check.sh carries weights/guard")
    fp32 = TorchBackend(load_model(trained), "cuda", precision="fp32")
    fp16 = TorchBackend(load_model(trained), "cuda", precision="fp16")
    dataset = SyntheticPeople(GUARD_IMAGES, fp32.config, None, seed=HELD_OUT_SEED)
    _, ref_xy = dataset_keypoints(TopDownEstimator(fp32, TopDownSettings(flip=True)), dataset)
    _, half_xy = dataset_keypoints(TopDownEstimator(fp16, TopDownSettings(flip=True)), dataset)
    labelled = np.stack([r.visible for r in dataset.records]) > 0
    moved = np.linalg.norm(half_xy.astype(np.float64) - ref_xy, axis=2)[labelled]
    within = float((moved <= 0.1).mean())
    record_property("guard_model_fp16_within_0.1px", within)
    record_property("guard_model_fp16_max_px", float(moved.max()))
    report = compare_backends(fp32, fp16, "fp16 torch cuda")
    record_property("guard_fp16_loss_points", report.loss_points)
    assert report.passed, report.summary()
    assert within >= 0.99, f"fp16 keypoints within 0.1 px of fp32 on {within:.1%} of joints (target 99 %)"
