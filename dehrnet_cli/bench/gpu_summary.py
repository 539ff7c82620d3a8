"""The one-screen summary of scripts/gpu_check.sh: `python -m dehrnet_cli.bench.gpu_summary OUT`.

Reads what the check left in OUT (pytest.xml: the gpu-marked tests and the numbers they recorded; bench.json and
bench_compile.json: the GPU section of `dehrnet bench`) and prints, in under 50 lines: the GPU, the tests, the
network's crops/s per model x precision x batch (eager, compiled), the device-path rows, the pipeline and
every target with met or not. Also written to OUT/summary.txt.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from dehrnet_cli.sinks.atomic import write_text_atomic

# targets the tests measure: (recorded property, label, target, higher is better)
TEST_TARGETS = (
    ("guard_model_fp16_within_0.1px", "fp16 keypoints within 0.1 px of fp32 (trained guard model), fraction", 0.99,
     True),
)


def read_tests(path: Path) -> tuple[dict[str, int], list[str], dict[str, str]]:
    """({passed, failed, skipped}, one line per failed or skipped test, every recorded property) of a junit file."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    lines: list[str] = []
    properties: dict[str, str] = {}
    if not path.is_file():
        return counts, [f"no test report ({path.name} missing)"], properties
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        for prop in case.iter("property"):
            properties[prop.get("name", "")] = prop.get("value", "")
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            counts["failed"] += 1
            lines.append(f"FAILED  {name}: {_first_line(failure.get('message'))}")
        elif skipped is not None:
            counts["skipped"] += 1
            lines.append(f"skipped {name}: {_first_line(skipped.get('message'))}")
        else:
            counts["passed"] += 1
    return counts, lines, properties


def _first_line(message: str | None) -> str:
    return (message or "").strip().splitlines()[0][:110] if (message or "").strip() else ""


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def network_lines(measurements: list[dict[str, Any]]) -> list[str]:
    """crops/s of the network alone, one line per model x precision (eager batches, then compiled)."""
    rows: dict[tuple[str, str], list[str]] = {}
    for m in (m for m in measurements if m["stage"] == "gpu_pose"):
        c = m["config"]
        tag = f"b{c['batch']}{' compiled' if c.get('compile') else ''}"
        rows.setdefault((c["model"], c["precision"]), []).append(f"{tag} {_rate(m['crops_per_s']['median'])}")
    return [f"  {model:<22} {precision:<5} {'  '.join(cells)}" for (model, precision), cells in rows.items()]


def device_lines(measurements: list[dict[str, Any]]) -> list[str]:
    """The crop, decode and pipeline rows: frames/s and crops/s."""
    out = []
    for m in measurements:
        c = m["config"]
        if m["stage"] in ("crop", "gpu_crop", "gpu_decode", "pipeline") or (m["stage"] == "pose" and c.get("path")):
            where = ", ".join(f"{k}={c[k]}" for k in ("size", "people", "precision", "batch", "flip") if k in c)
            crops = m["crops_per_s"]["median"] if m["crops_per_s"] else None
            per_crop = "" if crops is None else f", {_rate(crops)} crops/s"
            out.append(f"  {m['stage']:<11} {where:<48} {_rate(m['frames_per_s']['median'])} frames/s{per_crop}")
    return out


def target_lines(reports: list[dict[str, Any]], properties: dict[str, str]) -> list[str]:
    out = []
    for report in reports:
        for r in report["ratios"]:
            met = {True: "met", False: "NOT MET", None: "not measured"}[r["met"]]
            value = "-" if r["value"] is None else f"{r['value']:.4g}"
            sign = ">=" if r["higher_is_better"] else "<="
            out.append(f"  {met:<12} {r['label']}: {value} ({sign} {r['target']:g})")
    for key, label, target, higher in TEST_TARGETS:
        if key in properties:
            value = float(properties[key])
            met = "met" if (value >= target if higher else value <= target) else "NOT MET"
            out.append(f"  {met:<12} {label}: {value:.4g} ({'>=' if higher else '<='} {target:g})")
        else:
            out.append(f"  {'not measured':<12} {label} (test skipped or not run)")
    return out


def summarize(out_dir: Path) -> str:
    """The summary text of a gpu_check output folder."""
    counts, test_lines, properties = read_tests(out_dir / "pytest.xml")
    reports = _reports(out_dir)
    measurements = [m for report in reports for m in report["measurements"]]
    gpu = next((r["machine"].get("gpu") for r in reports if r["machine"].get("gpu")), None)
    env = (out_dir / "env.txt").read_text().splitlines()[:1] if (out_dir / "env.txt").is_file() else []
    lines = [f"gpu_check on {gpu or (env[0] if env else 'an unknown device')}",
             f"tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped",
             *[f"  {line}" for line in test_lines]]
    numbers = {k: v for k, v in properties.items() if "b64" in k or not k.startswith(("hrnet", "dehrnet"))}
    if numbers:
        lines.append("recorded: " + ", ".join(f"{k}={float(v):.3g}" if _is_number(v) else f"{k}={v}"
                                              for k, v in numbers.items()))
    if not reports:
        lines.append("bench: no report (bench.json missing: see bench.log)")
    else:
        lines += ["network alone, crops/s (CUDA events):", *network_lines(measurements),
                  "crops, decoding, pipeline:", *device_lines(measurements)]
    lines += ["targets:", *target_lines(reports, properties)]
    return "\n".join(lines) + "\n"


def _reports(out_dir: Path) -> list[dict[str, Any]]:
    """bench.json, and of bench_compile.json only what the compiled run adds (its compiled rows and ratios; its
    eager rows repeat bench.json's on a smaller video)."""
    reports = []
    if (out_dir / "bench.json").is_file():
        reports.append(json.loads((out_dir / "bench.json").read_text()))
    if (out_dir / "bench_compile.json").is_file():
        compiled = json.loads((out_dir / "bench_compile.json").read_text())
        compiled["measurements"] = [m for m in compiled["measurements"] if m["config"].get("compile")]
        compiled["ratios"] = [r for r in compiled["ratios"] if r["name"].endswith("_compiled")]
        reports.append(compiled)
    return reports


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0] if argv else "gpu_check_out")
    text = summarize(out_dir)
    write_text_atomic(out_dir / "summary.txt", text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
