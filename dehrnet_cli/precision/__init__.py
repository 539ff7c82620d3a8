"""Reduced-precision paths and the guard in front of them: cpu (what this CPU can do), resolve (--precision
-> a concrete precision and why), guard (the accuracy guard: a path must not lose more than 1 PCK point),
backend_factory (resolved flags -> a running backend, with cached exports).
"""
