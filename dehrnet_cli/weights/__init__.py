"""The weights registry: manifest (known checkpoints), download (checksummed, resumable), cache (where
files live, fetched on first use), pose_model (the user's --weights / --model flags -> a network).
No torch, no network and no disk access at import (pose_model imports torch when used).
"""
