"""OpenVinoBackend: the same heatmaps as torch fp32 from a dehrnet export, any batch size, the metadata read,
the compiled model cached beside the export, and one-line errors for what it cannot run."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import calibrate_bn, randomize

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.export.onnx import export_onnx
from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.onnx_session import UNTRAINED_KEY
from dehrnet_cli.pose.openvino_backend import OpenVinoBackend, openvino_cache_dir
from dehrnet_cli.precision.cpu import native_bf16
from models import create_model, load_model

pytest.importorskip("openvino")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "dehrnet_w8_128x96"


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[dict[str, Path], torch.nn.Module]:
    """The tiny DE-HRNet with weights of order one (DySample offsets of a few pixels) exported with each
    sampler, as traced (no onnxslim: seconds saved)."""
    model = calibrate_bn(randomize(create_model(TINY)), (128, 96))
    folder = tmp_path_factory.mktemp("openvino_export")
    paths = {sampler: export_onnx(model, folder / f"{sampler}.onnx", check=False, sampler=sampler, slim=False).path
             for sampler in ("grid_sample", "gather")}
    return paths, model


@pytest.fixture
def tiny_export(exports) -> tuple[Path, torch.nn.Module]:
    """The GridSample export (the one OpenVINO runs fastest) and its model."""
    paths, model = exports
    return paths["grid_sample"], model


def _crops(num: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num, 3, 128, 96)).astype(np.float32)


@pytest.mark.parametrize("sampler", ["grid_sample", "gather"])
def test_fp32_matches_torch_at_batch_1_and_3(exports, sampler):
    paths, model = exports
    backend = OpenVinoBackend(paths[sampler], "fp32", threads=1)
    reference = TorchBackend(model, "cpu", channels_last=False)
    for num in (1, 3):
        crops = _crops(num, seed=num)
        expected = reference(crops)
        got = backend(crops)
        assert got.shape == expected.shape == (num, 17, 32, 24) and got.dtype == np.float32
        assert np.abs(expected).max() > 0.1  # a real signal, not the official init's 1e-9
        np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max(), rtol=0)


def test_bf16_is_as_close_to_fp32_as_torch_bf16(tiny_export):
    """This random network amplifies rounding (torch bf16 lands 20-25 % away from fp32 here), so bf16 is
    compared with torch's bf16, not with a fixed bound; the precision check (precision.model_check) is the
    bound on a trained model."""
    path, model = tiny_export
    crops = _crops(4)
    fp32 = OpenVinoBackend(path, "fp32", threads=1)(crops)
    bf16 = OpenVinoBackend(path, "bf16", threads=1)(crops)
    torch_bf16 = TorchBackend(copy.deepcopy(model), "cpu", precision="bf16")(crops)

    def away(heatmaps: np.ndarray) -> float:
        return float(np.linalg.norm(heatmaps - fp32) / np.linalg.norm(fp32))

    if native_bf16():  # elsewhere OpenVINO may fall back to f32 and give fp32's numbers
        assert away(bf16) > 1e-4
    assert away(bf16) < 1.25 * away(torch_bf16)


def test_it_reads_the_config_and_the_untrained_flag(tiny_export, tmp_path):
    path, model = tiny_export
    backend = OpenVinoBackend(path, "fp32")
    assert backend.config == model.config and backend.untrained is False
    assert (backend.name, backend.device, backend.precision) == ("openvino", "cpu", "fp32")
    proto = onnx.load(str(path))
    proto.metadata_props.add(key=UNTRAINED_KEY, value="true")  # as export_onnx(..., untrained=True) writes it
    onnx.save(proto, str(tmp_path / "untrained.onnx"))
    assert OpenVinoBackend(tmp_path / "untrained.onnx", "fp32").untrained is True


def test_the_compiled_model_is_cached_beside_the_export(tiny_export, tmp_path):
    path, model = tiny_export
    local = tmp_path / "tiny.onnx"
    local.write_bytes(path.read_bytes())
    first = OpenVinoBackend(local, "bf16", threads=1)
    assert first.cache_dir == openvino_cache_dir(local) == tmp_path / "openvino"
    assert not first.loaded_from_cache and any(first.cache_dir.iterdir())
    second = OpenVinoBackend(local, "bf16", threads=1)
    assert second.loaded_from_cache
    np.testing.assert_array_equal(second(_crops(2)), first(_crops(2)))
    # OpenVINO's blob holds the transformed model; the precision is applied when it is loaded: fp32 from the
    # cache computes what an uncached fp32 compile does
    cached_fp32 = OpenVinoBackend(local, "fp32", threads=1)
    uncached_fp32 = OpenVinoBackend(local, "fp32", threads=1, cache=False)
    assert cached_fp32.loaded_from_cache and not uncached_fp32.loaded_from_cache
    np.testing.assert_array_equal(cached_fp32(_crops(2)), uncached_fp32(_crops(2)))
    assert np.abs(cached_fp32(_crops(2)) - first(_crops(2))).max() > 1e-3  # and not bf16's


def test_what_it_cannot_run_is_one_line(tiny_export, tmp_path):
    path, _ = tiny_export
    with pytest.raises(DehrnetError, match="runs fp32, bf16, int8"):
        OpenVinoBackend(path, "fp16")
    with pytest.raises(DehrnetError, match="its dehrnet_precision is fp32; .* an int8 model"):
        OpenVinoBackend(path, "int8")
    with pytest.raises(DehrnetError, match="no such model file"):
        OpenVinoBackend(tmp_path / "missing.onnx")
    with pytest.raises(DehrnetError, match="--threads 0"):
        OpenVinoBackend(path, threads=0)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(DehrnetError, match="OpenVINO cannot read it") as error:
        OpenVinoBackend(broken)
    assert "\n" not in str(error.value)
    plain = tmp_path / "plain.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation warning
        torch.onnx.export(torch.nn.Conv2d(3, 17, 1), (torch.zeros(1, 3, 8, 8),), str(plain), dynamo=False)
    with pytest.raises(DehrnetError, match="without dehrnet metadata"):
        OpenVinoBackend(plain)


def test_an_nncf_int8_model_runs_close_to_fp32_and_says_int8(tiny_export, tmp_path):
    from dehrnet_cli.export.openvino_int8 import quantize_openvino

    pytest.importorskip("nncf")
    path, model = tiny_export
    crops_bgr = np.random.default_rng(0).integers(0, 256, (8, 128, 96, 3), dtype=np.uint8)
    out = quantize_openvino(path, tmp_path / "tiny.int8.xml", crops_bgr)
    assert out.is_file() and out.with_suffix(".bin").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.int8.bin", "tiny.int8.xml"]  # no work files left
    int8 = OpenVinoBackend(out, "int8", threads=1, cache=False)
    assert int8.precision == "int8" and int8.config == model.config and not int8.untrained
    crops = _crops(2)
    fp32 = OpenVinoBackend(path, "fp32", threads=1, cache=False)(crops)
    got = int8(crops)
    # quantized, not fp32's numbers; still this network's output (this random network amplifies rounding: int8
    # lands 50-60 % away from fp32 in norm, bf16 15-25 %; the precision check bounds a trained model's int8)
    assert np.abs(got - fp32).max() > 1e-3
    assert np.corrcoef(got.ravel(), fp32.ravel())[0, 1] > 0.75
    with pytest.raises(DehrnetError, match="its dehrnet_precision is int8"):
        OpenVinoBackend(out, "bf16")
    with pytest.raises(DehrnetError, match="starts from an fp32 export"):
        quantize_openvino(out, tmp_path / "again.xml", crops_bgr)
    with pytest.raises(DehrnetError, match="expected uint8"):
        quantize_openvino(path, tmp_path / "bad.xml", crops_bgr[:, :64])


def test_a_checkpoint_gets_its_openvino_export_in_the_cache(tmp_path, monkeypatch):
    """DE-HRNet: its own export beside ONNX Runtime's, with GridSample; HRNet: ONNX Runtime's export itself."""
    from conftest import save_seeded_checkpoint

    from dehrnet_cli.precision.onnx_cache import cached_export, export_for_openvino, openvino_export

    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    weights = save_seeded_checkpoint(tmp_path / "tiny.pt")
    config = load_model(weights).config
    entry = openvino_export(weights, config)
    assert entry.onnx.name.endswith(".grid_sample.onnx") and entry.onnx != cached_export(weights).onnx
    assert not entry.ready
    export_for_openvino(load_model(weights), entry)
    assert entry.ready and "GridSample" in {node.op_type for node in onnx.load(str(entry.onnx)).graph.node}
    backend = OpenVinoBackend(entry.onnx, "fp32", threads=1)
    assert backend.cache_dir == entry.onnx.parent / "openvino" and backend.config == config
    nearest = config.__class__.from_dict({**config.to_dict(), "upsample": "nearest"})
    assert openvino_export(weights, nearest) == cached_export(weights)


def test_ctrl_c_after_backends_were_dropped_out_of_order_is_a_keyboard_interrupt(tiny_export):
    """OpenVINO's CPU plugin puts back, when destroyed, the alternate signal stack it found when loaded: backends
    with a Core each, dropped out of order (as the precision check's fp32 reference and a fallback are), left the
    main thread's signal stack on freed memory, and the next Ctrl-C killed the process with SIGSEGV."""
    import subprocess
    import sys

    script = f"""
import gc, os, signal, time
import numpy as np
from dehrnet_cli.pose.openvino_backend import OpenVinoBackend
first = OpenVinoBackend({str(tiny_export[0])!r}, "fp32", threads=1, cache=False)
second = OpenVinoBackend({str(tiny_export[0])!r}, "bf16", threads=1, cache=False)
second(np.zeros((1, 3, 128, 96), np.float32))
del first; gc.collect()
del second; gc.collect()
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "KeyboardInterrupt", (done.returncode, done.stderr[-500:])
