"""`dehrnet bench`: statistics, nominal peak FLOP/s, target ratios, timing, the memory meter, the Markdown
section, and one tiny run end to end. No test asserts a speed target: `make bench` measures speed."""

from __future__ import annotations

import json
import re
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from dehrnet_cli.bench import timing as bench_timing
from dehrnet_cli.bench.machine import PeakRss, cpu_peak_flops, fp32_flops_per_cycle, gpu_peak_flops
from dehrnet_cli.bench.model_cost import count_flops, shape_only_model, summarize
from dehrnet_cli.bench.report import stage_rows, update_markdown
from dehrnet_cli.bench.results import (
    PEER,
    PIPELINE,
    PIPELINE_BACKEND,
    PIPELINE_PRECISION,
    STAGES,
    Measurement,
    Spread,
    compute_ratios,
    stage_fps,
)
from dehrnet_cli.bench.run import BenchReport
from dehrnet_cli.bench.settings import make_settings
from dehrnet_cli.bench.stages import Bench
from dehrnet_cli.cli.bench import bench_command, split_precisions
from dehrnet_cli.cli.command import add_commands
from dehrnet_cli.precision.cpu import CpuInfo, parse_cpuinfo

TINY = "dehrnet_w8_128x96"


def _cpuinfo(flags: str, mhz: float = 3000.0, smt: bool = True) -> str:
    """/proc/cpuinfo text of one socket with 2 physical cores (4 logical CPUs with SMT)."""
    cpus = [(0, 0), (1, 1), (2, 0), (3, 1)] if smt else [(0, 0), (1, 1)]
    return "\n\n".join(
        f"processor\t: {n}\nmodel name\t: Test CPU\ncpu MHz\t\t: {mhz:.3f}\nphysical id\t: 0\ncore id\t\t: {core}\n"
        f"flags\t\t: fpu sse sse2 {flags}" for n, core in cpus) + "\n"


# ----------------------------------------------------------------------------------- statistics


def test_spread_of_known_samples():
    odd = Spread.of([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (odd.median, odd.q1, odd.q3, odd.min, odd.max, odd.n) == (3.0, 2.0, 4.0, 1.0, 5.0, 5)
    even = Spread.of([1.0, 2.0, 3.0, 10.0])  # linear interpolation between order statistics
    assert (even.median, even.q1, even.q3) == pytest.approx((2.5, 1.75, 4.75))
    assert Spread.of([7.0]) == Spread(7.0, 7.0, 7.0, 7.0, 7.0, 1)
    with pytest.raises(ValueError):
        Spread.of([])


def test_measurement_rates_are_per_repetition():
    m = Measurement("crop", {"size": "64x48"}, frames=10, crops=50, seconds=[1.0, 2.0, 0.5])
    assert (m.fps.median, m.fps.min, m.fps.max) == (10.0, 5.0, 20.0)
    assert m.crops_per_s.median == 50.0
    assert Measurement("render", {}, 10, 0, [1.0]).crops_per_s is None
    row = m.to_dict()
    assert row["frames_per_s"]["median"] == 10.0 and row["crops_per_s"]["max"] == 100.0


# ------------------------------------------------------------------------------ nominal peaks


def test_cpu_peak_from_cpuinfo_flags():
    info = parse_cpuinfo(_cpuinfo("avx avx2 fma"))
    assert (info.model, info.cores, info.mhz) == ("Test CPU", 2, 3000.0)  # SMT siblings are not cores
    assert cpu_peak_flops(info).flops_per_s == 2 * 3000e6 * 32
    assert "nominal" in cpu_peak_flops(info).basis
    assert fp32_flops_per_cycle(parse_cpuinfo(_cpuinfo("avx avx2 fma avx512f")).flags) == (64, "AVX-512")
    assert fp32_flops_per_cycle(parse_cpuinfo(_cpuinfo("avx")).flags) == (16, "AVX")
    assert fp32_flops_per_cycle(parse_cpuinfo(_cpuinfo("avx avx2")).flags) == (16, "AVX")  # no FMA
    assert fp32_flops_per_cycle(frozenset()) == (2, "scalar")
    capped = parse_cpuinfo(_cpuinfo("avx2 fma", smt=False), usable_cpus=1, max_mhz=3500.0)
    assert cpu_peak_flops(capped).flops_per_s == 1 * 3500e6 * 32


def _cpu(flags: str, cores: int = 2, mhz: float = 2000.0) -> CpuInfo:
    return CpuInfo("Test CPU", cores, mhz, frozenset(f"sse2 avx avx2 fma {flags}".split()))


@pytest.mark.parametrize(("flags", "precision", "per_cycle", "unit"), [
    ("", "fp32", 32, "AVX2+FMA"),
    ("avx512f avx512bw avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8", "bf16", 1024, "AMX-BF16"),
    ("avx512f avx512bw avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8", "int8", 2048, "AMX-INT8"),
    ("avx512f avx512bw avx512_vnni avx512_bf16", "bf16", 128, "AVX512-BF16"),
    ("avx512f avx512bw avx512_vnni avx512_bf16", "int8", 256, "AVX512-VNNI"),
    ("avx512f avx512bw avx512_vnni avx512_bf16", "fp32", 64, "AVX-512"),
    ("avx_vnni", "int8", 128, "AVX-VNNI"),
    ("avx512f avx512bw", "int8", 128, "AVX512BW"),
    ("", "int8", 64, "AVX2"),
])
def test_cpu_peak_per_precision(flags, precision, per_cycle, unit):
    peak = cpu_peak_flops(_cpu(flags), precision)
    assert peak.flops_per_s == 2 * 2000e6 * per_cycle
    assert f"x {per_cycle} " in peak.basis and unit in peak.basis and precision in peak.basis


def test_cpu_peak_without_a_native_unit_is_the_fp32_peak():
    """Emulated bf16 (and int8 without even AVX2's byte multiplies) cannot beat fp32 arithmetic."""
    avx2 = _cpu("avx512_vnni")  # int8 dot products, but no bf16 unit
    assert cpu_peak_flops(avx2, "bf16").flops_per_s == cpu_peak_flops(avx2).flops_per_s == 2 * 2000e6 * 32
    assert "no native bf16 unit" in cpu_peak_flops(avx2, "bf16").basis
    old = CpuInfo("Old CPU", 4, 1000.0, frozenset({"sse2"}))
    assert cpu_peak_flops(old, "int8").flops_per_s == 4 * 1000e6 * 8
    assert "no native int8 unit" in cpu_peak_flops(old, "int8").basis


def test_gpu_peak_by_device_name():
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3", "fp16").flops_per_s == pytest.approx(989.4e12)
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3", "fp32").flops_per_s == pytest.approx(66.9e12)
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3", "fp32", tf32=True).flops_per_s == pytest.approx(494.7e12)
    assert gpu_peak_flops("NVIDIA H100 PCIe", "fp16").flops_per_s == pytest.approx(756.5e12)
    assert gpu_peak_flops("NVIDIA GeForce GTX 480", "fp16") is None
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3", "bf16").flops_per_s == pytest.approx(989.4e12)
    assert gpu_peak_flops("Tesla V100-SXM2-16GB", "bf16").flops_per_s == pytest.approx(15.7e12)  # no bf16 cores
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3", "int8") is None


# ------------------------------------------------------------------------------------- ratios


def _pose(model: str, backend: str, flip: bool, seconds: float, batch: int = 4,
          precision: str = "fp32") -> Measurement:
    config = {"model": model, "backend": backend, "precision": precision, "batch": batch, "flip": flip}
    return Measurement("pose", config, batch, batch, [seconds])


def _stages(pipeline_seconds: float, with_render: bool = True) -> list[Measurement]:
    """Stages of a 1-person 64x48 pipeline: pose with flip is the slowest (4 crops in 2.1 s: 1.905 fps)."""
    de = "dehrnet_w32_384x288"
    rows = [Measurement("video_decode", {"size": "64x48"}, 10, 0, [0.1]),
            Measurement("crop", {"size": "64x48", "people": 1, "model": de}, 10, 10, [0.05]),
            Measurement("decode_flip", {"people": 1, "flip": True, "model": de}, 10, 10, [0.02]),
            Measurement("encode", {"size": "64x48"}, 10, 0, [0.2]),
            _pose(de, "torch", True, 2.1), _pose(de, "torch", False, 1.0), _pose(de, "onnx", False, 0.5),
            _pose("hrnet_w32_384x288", "torch", False, 0.9)]
    if with_render:
        rows.append(Measurement("render", {"size": "64x48", "people": 1}, 10, 0, [0.1]))
    config = {"size": "64x48", "people": 1, "model": de, "backend": "torch", "precision": "fp32", "batch": 4,
              "flip": True}
    rows.append(Measurement(PIPELINE, config, 17, 17, [pipeline_seconds]))
    return rows


def test_ratios_from_measurements():
    rss = {"frames_n": 10, "peak_n_bytes": 100 * 2**20, "peak_2n_bytes": 103 * 2**20}
    ratios = {r.name: r for r in compute_ratios(_stages(pipeline_seconds=10.0), rss)}
    assert ratios["pipeline_overlap"].value == pytest.approx(1.7 / (4 / 2.1))
    assert ratios["pipeline_overlap"].met is True and "pose" in ratios["pipeline_overlap"].detail
    assert ratios["flip_cost"].value == pytest.approx(2.1) and ratios["flip_cost"].met is True
    assert ratios["onnx_cpu_speedup"].value == pytest.approx(2.0) and ratios["onnx_cpu_speedup"].met is True
    assert ratios["dehrnet_overhead"].value == pytest.approx(1.0 / 0.9) and ratios["dehrnet_overhead"].met is True
    assert ratios["rss_growth"].value == pytest.approx(1.03) and ratios["rss_growth"].met is True
    assert not any(name.startswith("gpu_") for name in ratios)  # GPU targets only on CUDA

    slow = {r.name: r for r in compute_ratios(_stages(pipeline_seconds=17.0))}
    assert slow["pipeline_overlap"].value == pytest.approx(1.0 / (4 / 2.1)) and slow["pipeline_overlap"].met is False
    assert "rss_growth" not in slow

    five = dict(_stages(10.0)[-1].config, people=5)  # the pose stage's frames/s is its crops/s per person
    assert stage_fps(_stages(10.0), "pose", five) == pytest.approx(4 / 2.1 / 5)

    missing = compute_ratios(_stages(10.0, with_render=False))
    overlap = next(r for r in missing if r.name == "pipeline_overlap")
    assert overlap.value is None and overlap.met is None and "render" in overlap.detail


def test_the_openvino_pipeline_is_compared_with_onnx_runtime_at_each_people_count():
    """pipeline_openvino_vs_onnx (>= 1.8): the default-path rows' OpenVINO fps over ONNX Runtime fp32's, per
    people count; nothing without the ONNX Runtime row of the same count."""
    def row(backend: str, people: int, seconds: float) -> Measurement:
        config = {"size": "1280x720", "people": people, "model": "hrnet_w32_384x288", "backend": backend,
                  "precision": "bf16" if backend == "openvino" else "fp32", "flip": True}
        return Measurement(PIPELINE_BACKEND, config, 10, 10 * people, [seconds])

    rows = [row("onnx", 1, 4.0), row("openvino", 1, 2.0), row("onnx", 5, 20.0), row("openvino", 5, 12.5),
            row("openvino", 3, 1.0)]
    ratios = [r for r in compute_ratios(rows) if r.name == "pipeline_openvino_vs_onnx"]
    assert [(r.value, r.met) for r in ratios] == [(pytest.approx(2.0), True), (pytest.approx(1.6), False)]
    assert "5 people" in ratios[1].detail and "openvino bf16" in ratios[1].detail


def test_precision_ratios_from_measurements():
    """OpenVINO bf16 vs its fp32 (>= 1.5) and vs fp32 ONNX Runtime (>= 1.8), int8 vs fp32 ONNX Runtime
    (>= 1.5)."""
    de = "dehrnet_w32_384x288"
    rows = [_pose(de, "openvino", False, 3.0), _pose(de, "onnx", False, 2.0),
            _pose(de, "openvino", False, 1.0, precision="bf16"), _pose(de, "onnx", False, 1.4, precision="int8"),
            _pose(de, "openvino", True, 9.0, precision="bf16"), _pose(de, "openvino", False, 9.0, batch=8)]
    ratios = {r.name: r for r in compute_ratios(rows)}
    assert ratios["bf16_speedup_openvino"].value == pytest.approx(3.0) and ratios["bf16_speedup_openvino"].met
    assert ratios["bf16_vs_onnx_fp32"].value == pytest.approx(2.0) and ratios["bf16_vs_onnx_fp32"].met is True
    assert ratios["int8_speedup_onnx"].value == pytest.approx(2.0 / 1.4) and not ratios["int8_speedup_onnx"].met
    assert "batch 4" in ratios["int8_speedup_onnx"].detail
    assert sum(r.name.startswith(("bf16", "int8")) for r in compute_ratios(rows)) == 3  # flip, batch 8: no pair

    slow = [_pose(de, "openvino", False, 3.0), _pose(de, "onnx", False, 2.0),
            _pose(de, "openvino", False, 2.5, precision="bf16"), _pose(de, "onnx", False, 1.0, precision="int8")]
    slow_ratios = {r.name: r for r in compute_ratios(slow)}
    assert slow_ratios["bf16_speedup_openvino"].value == pytest.approx(1.2)
    assert slow_ratios["bf16_speedup_openvino"].met is False
    assert slow_ratios["bf16_vs_onnx_fp32"].value == pytest.approx(0.8) and not slow_ratios["bf16_vs_onnx_fp32"].met
    assert slow_ratios["int8_speedup_onnx"].value == pytest.approx(2.0) and slow_ratios["int8_speedup_onnx"].met

    alone = {r.name for r in compute_ratios([_pose(de, "openvino", False, 1.0, precision="bf16")])}
    assert not alone & {"bf16_speedup_openvino", "bf16_vs_onnx_fp32"}  # only where the fp32 rows exist
    assert not any(r.name.startswith(("bf16", "int8")) for r in compute_ratios(rows, device="cuda"))


def _network(model: str, seconds: float, compiled: bool = False) -> Measurement:
    config = {"model": model, "backend": "torch", "precision": "fp16", "batch": 64, "flip": False, "device": "cuda",
              **({"compile": True} if compiled else {})}
    return Measurement("gpu_pose", config, 256, 256, [seconds])


def test_gpu_ratios_only_on_cuda():
    """Issue 19's targets from the GPU section's rows: eager and compiled rows kept apart."""
    rows = [_pose("dehrnet_w32_384x288", "torch", False, 0.01, batch=64),
            _network("hrnet_w32_384x288", 0.08), _network("dehrnet_w32_384x288", 0.096),
            _network("hrnet_w32_384x288", 0.05, compiled=True), _network("dehrnet_w32_384x288", 0.06, compiled=True),
            Measurement(PIPELINE, {"size": "1920x1080", "people": 5, "model": "dehrnet_w32_384x288", "backend": "torch",
                                   "precision": "fp16", "batch": 32, "flip": True}, 256, 1280, [2.0])]
    ratios = {r.name: r for r in compute_ratios(rows, device="cuda")}
    assert ratios["gpu_hrnet_crops_per_s"].value == pytest.approx(3200) and ratios["gpu_hrnet_crops_per_s"].met is False
    assert ratios["gpu_hrnet_crops_per_s_compiled"].value == pytest.approx(5120)
    assert ratios["gpu_hrnet_crops_per_s_compiled"].met is True
    assert ratios["gpu_dehrnet_overhead"].value == pytest.approx(1.2) and ratios["gpu_dehrnet_overhead"].met is False
    assert ratios["gpu_dehrnet_overhead_compiled"].value == pytest.approx(1.2)
    assert ratios["gpu_pipeline_fps"].value == pytest.approx(128) and ratios["gpu_pipeline_fps"].met is False
    assert "onnx_cpu_speedup" not in ratios
    assert not any(r.name.startswith("gpu_") for r in compute_ratios(rows, device="cpu"))


# ------------------------------------------------------------------------------------- timing


def test_time_call_on_cpu_uses_the_host_clock():
    seconds = bench_timing.time_call(lambda: time.sleep(0.05))
    assert 0.05 <= seconds < 0.5


def test_time_call_on_cuda_uses_events_after_a_sync(monkeypatch):
    """The CUDA branch, with a stand-in torch.cuda: synchronise first, events around the call, ms -> s."""
    calls: list[str] = []

    class FakeEvent:
        def __init__(self, enable_timing: bool) -> None:
            assert enable_timing

        def record(self) -> None:
            calls.append("record")

        def synchronize(self) -> None:
            calls.append("event sync")

        def elapsed_time(self, end: FakeEvent) -> float:
            return 250.0  # milliseconds

    class FakeDevice:
        def __init__(self, device: torch.device) -> None:
            calls.append(f"device {device}")

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    fake_cuda = types.SimpleNamespace(synchronize=lambda: calls.append("sync"), Event=FakeEvent, device=FakeDevice)
    monkeypatch.setattr(torch, "cuda", fake_cuda)
    assert bench_timing.time_call(lambda: calls.append("fn"), "cuda:0") == 0.25
    assert calls == ["device cuda:0", "sync", "record", "fn", "record", "event sync"]


def test_repeat_warms_up_then_times():
    count = []
    seconds, first = bench_timing.repeat(lambda: count.append(1), warmup=2, repeats=3)
    assert len(count) == 5 and len(seconds) == 3 and first >= 0
    count.clear()
    seconds, _ = bench_timing.repeat(lambda: count.append(1), warmup=0, repeats=3)
    assert len(count) == 3 and len(seconds) == 3  # the first call is a timed one


def test_interleaved_timing_goes_round_robin():
    """Configurations alternate call by call, so that drifting machine load hits them alike."""
    order: list[str] = []
    results = bench_timing.interleaved([lambda: order.append("a"), lambda: order.append("b")], warmup=2, repeats=2)
    assert order == ["a", "b"] * 4  # first (warm-up) calls, one more warm-up round, two timed rounds
    assert [len(seconds) for seconds, _ in results] == [2, 2]


def test_peak_rss_sees_a_transient_allocation_and_forgets_earlier_ones():
    earlier = np.ones(384 * 2**20 // 8)  # 384 MiB, touched, freed before the meters start
    del earlier
    with PeakRss() as idle:
        pass
    with PeakRss() as busy:
        block = np.ones(256 * 2**20 // 8)
        del block
    assert busy.method and busy.peak_bytes - idle.peak_bytes > 200 * 2**20


def test_torch_threads_are_restored():
    threads = torch.get_num_threads()
    with bench_timing.torch_threads_kept():
        torch.set_num_threads(threads + 1)  # what ultralytics' select_device does on CPU
    assert torch.get_num_threads() == threads


# ------------------------------------------------------------------------------------- report


def test_markdown_sections_are_replaced_not_repeated():
    text = update_markdown("", "CPU A (ratios only)", "## CPU A (ratios only)\nfirst\n")
    assert text.startswith("# Benchmarks") and "first" in text
    text = update_markdown(text, "GPU B (full sweep)", "## GPU B (full sweep)\nother\n")
    text = update_markdown(text, "CPU A (ratios only)", "## CPU A (ratios only)\nsecond\n")
    assert text.count("## CPU A") == 1 and "first" not in text and "second" in text and "other" in text
    assert text.index("## CPU A") < text.index("## GPU B")  # a replaced section keeps its place


def test_stage_table_puts_precision_pipelines_after_the_pipeline():
    rows = [Measurement(PEER, {"size": "64x48"}, 4, 0, [1.0]),
            Measurement(PIPELINE_PRECISION, {"size": "1280x720", "precision": "bf16"}, 4, 12, [1.0]),
            Measurement(PIPELINE, {"size": "64x48"}, 4, 4, [1.0]),
            Measurement("encode", {"size": "64x48"}, 4, 0, [1.0])]
    report = BenchReport({}, "dehrnet bench", "today", {}, rows)
    assert [row[0] for row in stage_rows(report)] == ["encode", PIPELINE, PIPELINE_PRECISION, PEER]


# -------------------------------------------------------------------------------- end to end


def _bench_app() -> typer.Typer:
    app = typer.Typer()
    add_commands(app, bench_command)
    app.command("noop")(lambda: None)  # a second command, so that `bench` is a sub-command as in dehrnet
    return app


TINY_ARGS = ["bench", "--model", TINY, "--size", "64x48", "--frames", "4", "--batch", "2", "--pipeline-batch", "2",
             "--repeats", "2", "--warmup", "1", "--no-sweep", "--device", "cpu", "--quiet"]


def test_bench_runs_end_to_end_and_writes_every_stage(tmp_path, one_torch_thread):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "docs" / "benchmarks.md"
    args = [*TINY_ARGS, "--people", "1", "--people", "2", "--backend", "torch", "--json", str(out_json),
            "--markdown", str(out_md)]
    result = CliRunner().invoke(_bench_app(), args)
    assert result.exit_code == 0, result.output
    assert "Targets" in result.output and "pipeline fps / slowest stage fps" in result.output
    report = json.loads(out_json.read_text())
    rows = report["measurements"]
    assert {r["stage"] for r in rows} == {*STAGES, PIPELINE, PIPELINE_BACKEND, PEER}
    default_path = {(r["config"]["backend"], r["config"]["people"]): r["config"]["runs_on"] for r in rows
                    if r["stage"] == PIPELINE_BACKEND}
    assert {backend for backend, _ in default_path} == {"torch", "onnx", "openvino", "auto"}
    assert {people for _, people in default_path} == {1, 5}
    assert all(runs_on == backend for (backend, _), runs_on in default_path.items() if backend != "auto")
    assert default_path["auto", 1] in ("openvino", "onnx", "torch")
    for row in rows:
        assert row["frames_per_s"]["median"] > 0 and row["frames_per_s"]["n"] == 2, row
        assert all(s > 0 for s in row["seconds"])
        if row["stage"] in ("crop", "pose", "decode_flip", PIPELINE):
            assert row["crops_per_s"]["median"] > 0
    assert {r["config"]["people"] for r in rows if r["stage"] == "crop"} == {1, 2}
    pose = [r for r in rows if r["stage"] == "pose"]
    assert {r["config"]["flip"] for r in pose} == {False, True}
    assert all(r["extra"]["achieved_flops_per_s"] > 0 and r["extra"]["peak_flops_per_s"] > 0 for r in pose)
    ratios = {r["name"]: r for r in report["ratios"]}
    assert {"pipeline_overlap", "flip_cost", "rss_growth", "pipeline_openvino_vs_onnx"} <= set(ratios)
    assert all(r["value"] > 0 for r in ratios.values())
    assert report["rss"]["peak_2n_bytes"] > 0 and report["machine"]["versions"]["torch"] == torch.__version__
    assert report["command"] and report["date"]
    markdown = out_md.read_text()
    assert markdown.startswith("# Benchmarks") and "| pipeline |" in markdown and report["command"] in markdown


def test_gpu_section_runs_on_the_cpu_too(tmp_path, one_torch_thread):
    """`--gpu` with the device forced to the CPU: the device-path rows (gpu_crop, gpu_decode, the device
    path's pose row) and the network rows, no detector or peer, its own Markdown section title."""
    out_json, out_md = tmp_path / "gpu.json", tmp_path / "gpu.md"
    args = ["bench", "--gpu", "--device", "cpu", "--model", TINY, "--precision", "fp32", "--size", "64x48",
            "--frames", "2", "--people", "1", "--batch", "2", "--pipeline-batch", "2", "--repeats", "1", "--warmup",
            "0", "--no-pipeline", "--quiet", "--json", str(out_json), "--markdown", str(out_md)]
    result = CliRunner().invoke(_bench_app(), args)
    assert result.exit_code == 0, result.output
    report = json.loads(out_json.read_text())
    stages = {r["stage"] for r in report["measurements"]}
    assert {"gpu_pose", "gpu_crop", "gpu_decode", "pose", "crop", "video_decode"} <= stages
    assert not stages & {"detector", PEER, PIPELINE}
    network = next(r for r in report["measurements"] if r["stage"] == "gpu_pose")
    assert network["config"]["batch"] == 2 and network["crops_per_rep"] == 256
    assert network["extra"]["achieved_flops_per_s"] > 0
    assert next(r for r in report["measurements"] if r["stage"] == "pose")["config"]["path"] == "device"
    assert "(GPU section)" in out_md.read_text()
    result = CliRunner().invoke(_bench_app(), ["bench", "--gpu", "--quick"])
    assert result.exit_code == 2 and "two presets" in result.output


@pytest.mark.slow
def test_bench_onnx_backend_and_speedup_ratio(tmp_path, one_torch_thread):
    """The ONNX Runtime pose stage and its speed-up ratio (slow: the export takes ~20 s on 2 busy cores)."""
    out_json = tmp_path / "bench.json"
    args = [*TINY_ARGS, "--backend", "torch", "--backend", "onnx", "--flip", "off", "--no-pipeline", "--no-detector",
            "--no-peer", "--json", str(out_json)]
    result = CliRunner().invoke(_bench_app(), args)
    assert result.exit_code == 0, result.output
    report = json.loads(out_json.read_text())
    onnx = [r for r in report["measurements"] if r["stage"] == "pose" and r["config"]["backend"] == "onnx"]
    assert len(onnx) == 1 and onnx[0]["crops_per_s"]["median"] > 0
    assert next(r for r in report["ratios"] if r["name"] == "onnx_cpu_speedup")["value"] > 0


def _plan(monkeypatch, tmp_path, flags: str, **overrides) -> Bench:
    monkeypatch.setattr("dehrnet_cli.bench.stages.read_cpu_info", lambda: _cpu(flags))
    settings = make_settings(True, models=(TINY, "hrnet_w32_256x192"), device="cpu", people=(1,),
                             **{"default_path": False, **overrides})
    return Bench(settings, tmp_path)


def test_reduced_precisions_run_on_their_own_backend_next_to_their_fp32_rows(monkeypatch, tmp_path):
    bench = _plan(monkeypatch, tmp_path, "", backends=("torch",), precisions=("fp32", "bf16", "int8"))
    configs = bench.pose_configs()
    for backend, precision in [("openvino", "bf16"), ("onnx", "int8"), ("torch", "fp32"), ("onnx", "fp32"),
                               ("openvino", "fp32")]:
        assert configs.count((TINY, backend, precision, 4, False)) == 1, (backend, precision)
    reduced = {(b, p) for _, b, p, _, _ in configs if p != "fp32"}
    assert reduced == {("openvino", "bf16"), ("onnx", "int8")}
    assert not any(m != TINY and p != "fp32" for m, _, p, _, _ in configs)  # the first model only
    assert bench.precision_paths() == [("torch", "fp32"), ("onnx", "fp32"), ("openvino", "fp32"),
                                       ("openvino", "bf16"), ("onnx", "int8")]
    assert bench.max_people == 3  # the per-precision pipeline's people are drawn in the video
    assert any("bf16 is emulated" in note for note in bench.notes)

    swept = _plan(monkeypatch, tmp_path, "", backends=("torch", "onnx"), precisions=("bf16",), sweep=True,
                  batches=(1, 2)).pose_configs()
    assert {(b, p) for _, b, p, _, _ in swept} == {("torch", "fp32"), ("onnx", "fp32"), ("openvino", "fp32"),
                                                   ("openvino", "bf16")}
    assert {(batch, flip) for m, b, p, batch, flip in swept if p == "bf16" and m == TINY} == {
        (1, False), (1, True), (2, False), (2, True), (4, False)}

    native = _plan(monkeypatch, tmp_path, "avx512f avx512_bf16", backends=("torch",), precisions=("bf16",),
                   precision_pipeline=False)
    assert native.precision_paths() == [("torch", "fp32"), ("onnx", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")]
    assert not native.notes and native.max_people == 1
    assert _plan(monkeypatch, tmp_path, "", default_path=True).max_people == 5  # the default-path rows' 5 people
    assert native.peak_fn("bf16").flops_per_s == 2 * 2000e6 * 128
    default = _plan(monkeypatch, tmp_path, "")
    assert default.precision_paths() == [] and {p for _, _, p, _, _ in default.pose_configs()} == {"fp32"}


def _stand_in_export(model, out: Path, opset: int = 17, half: bool = False, check: bool = True,
                     device: str = "cpu", slim: bool = False, sampler: str = "gather") -> Path:
    """export_onnx's stand-in: a two-node network (4x4 average pool, 1x1 conv to K heatmaps) with the real
    input, output and metadata, so the bench's ONNX and int8 plumbing runs without a 10-20 s export."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from dehrnet_cli.pose.onnx_session import INPUT_NAME, OUTPUT_NAME

    cfg = model.config
    (w, h), k = cfg.input_size, cfg.keypoints.num_keypoints
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((k, 3, 1, 1)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("AveragePool", [INPUT_NAME], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
         helper.make_node("Conv", ["pooled", "w"], [OUTPUT_NAME])], "stand_in",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, h, w])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", k, h // 4, w // 4])], [weights])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    proto.metadata_props.add(key="dehrnet_config", value=json.dumps(cfg.to_dict()))
    proto.metadata_props.add(key="dehrnet_precision", value="fp16" if half else "fp32")
    onnx.save(proto, str(out))
    return Path(out)


def test_bench_bf16_and_int8_rows_and_pipelines(tmp_path, monkeypatch, one_torch_thread):
    """--precision bf16 --precision int8 with --backend torch: bf16 on torch, int8 on ONNX Runtime (really
    quantized, from the stand-in export), the fp32 rows they are compared with, their ratios and the
    1280x720 3-people flip pipeline once per precision."""
    monkeypatch.setattr("dehrnet_cli.export.onnx.export_onnx", _stand_in_export)
    out_json = tmp_path / "bench.json"
    args = ["bench", "--model", TINY, "--size", "64x48", "--frames", "2", "--batch", "2", "--pipeline-batch", "2",
            "--repeats", "1", "--warmup", "0", "--no-sweep", "--device", "cpu", "--quiet", "--people", "1",
            "--backend", "torch", "--flip", "off", "--no-detector", "--no-peer", "--precision", "bf16",
            "--precision", "int8", "--json", str(out_json)]
    result = CliRunner().invoke(_bench_app(), args)
    assert result.exit_code == 0, result.output
    report = json.loads(out_json.read_text())
    pose = {(r["config"]["backend"], r["config"]["precision"]): r for r in report["measurements"]
            if r["stage"] == "pose"}
    assert set(pose) == {("torch", "fp32"), ("onnx", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"),
                         ("onnx", "int8")}
    assert all(r["crops_per_s"]["median"] > 0 and r["config"]["flip"] is False for r in pose.values())
    assert "int8 ops" in pose["onnx", "int8"]["extra"]["peak_basis"]
    assert "bf16" in pose["openvino", "bf16"]["extra"]["peak_basis"]
    assert "measured: bf16" in pose["openvino", "bf16"]["extra"]["measured_basis"]  # the probe beside each row
    assert 0 < pose["torch", "fp32"]["extra"]["fraction_of_measured"]
    ratios = {r["name"]: r for r in report["ratios"]}
    assert all(ratios[name]["value"] > 0 for name in ("bf16_speedup_openvino", "bf16_vs_onnx_fp32",
                                                              "int8_speedup_onnx"))
    pipes = [r for r in report["measurements"] if r["stage"] == PIPELINE_PRECISION]
    assert [(r["config"]["backend"], r["config"]["precision"]) for r in pipes] == [
        ("torch", "fp32"), ("onnx", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"), ("onnx", "int8")]
    assert all(r["config"]["size"] == "1280x720" and r["config"]["people"] == 3 and r["config"]["flip"]
               and r["crops_per_s"]["median"] > 0 for r in pipes)
    assert [r["config"]["precision"] for r in report["measurements"] if r["stage"] == PIPELINE] == ["fp32"]
    assert "int8 speed-up over fp32 (ONNX Runtime)" in result.output and "pipeline_precision" in result.output
    assert re.search(r"[GT]OP/s", result.output)  # int8 rows count integer ops
    assert "of matrix" in result.output and "Matrix rate: measured: bf16" in result.output


def test_precision_lists_are_split_and_checked():
    assert split_precisions(["fp32,BF16", " int8", "bf16"]) == ("fp32", "bf16", "int8")
    assert split_precisions(None) is None and split_precisions([","]) is None
    result = CliRunner().invoke(_bench_app(), ["bench", "--precision", "fp32,fp8"])
    assert result.exit_code == 2 and "--precision 'fp8'" in result.output and "int8" in result.output


def test_bench_refuses_bad_options_in_one_line():
    result = CliRunner().invoke(_bench_app(), ["bench", "--batch", "0"])
    assert result.exit_code == 2 and "--batch 0" in result.output
    result = CliRunner().invoke(_bench_app(), ["bench", "--model", "resnet50"])
    assert result.exit_code == 2 and "not a named architecture" in result.output


def test_flops_are_counted_on_the_meta_device_and_equal_a_real_forwards(conv_input_devices):
    """The bench hands over a real network; count_flops runs no real forward (the meta device has shapes,
    no values) and counts exactly what FlopCounterMode counts on a real forward."""
    from torch.utils.flop_counter import FlopCounterMode

    from models import create_model

    net = create_model(TINY).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(torch.zeros(2, 3, 128, 96))
    real = counter.get_total_flops()
    assert conv_input_devices == {"cpu"}  # the spy sees the real forward ...
    conv_input_devices.clear()
    assert count_flops(net, net.config.input_size, batch=2) == real > 0
    assert conv_input_devices == {"meta"}  # ... and counting none
    assert all(p.device.type == "cpu" for p in net.parameters())  # the caller's network is left as it was


@pytest.mark.parametrize("name,paper", [("hrnet_w32_384x288", 16.0), ("hrnet_w48_384x288", 32.9),
                                        ("hrnet_w32_256x192", 7.1), ("hrnet_w48_256x192", 14.6)])
def test_paper_gflops_are_the_hrnet_papers_figures(name, paper, conv_input_devices):
    """The official get_model_summary counts conv and linear multiply-adds, as FlopCounterMode does, and
    prints them / 2**30 as "GFLOPs": the paper's 16.0 / 32.9 / 7.1 / 14.6 with nothing left out."""
    summary = summarize(shape_only_model(name))
    assert round(summary.paper_gflops, 1) == paper
    assert summary.paper_gflops == summary.flops / 2 / 2**30 and summary.gmacs == summary.flops / 2e9
    assert round(summary.params / 1e6, 1) == (28.5 if "w32" in name else 63.6)
    assert conv_input_devices == {"meta"}
