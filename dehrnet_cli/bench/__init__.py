"""`dehrnet bench`: settings, synthetic_video (the input), timing, stages and pipeline (the measurements),
machine (what it ran on, nominal peaks, peak RSS), model_cost (parameters and FLOPs), results (measurements
and target ratios), run (one run), report (tables, JSON, Markdown).
"""
