"""Frames to the device once each: pinned host buffers and a copy stream, so that the upload of one frame
overlaps the crops and network work of the frames before it.

On CUDA every upload goes host array -> pinned slot (a host memcpy) -> device slot, the second copy queued
on a side stream; the compute stream waits only for the frame it is about to read (`DeviceFrame.ready`).
Slots are reused round-robin: a slot's buffers are rewritten only after the compute stream has finished
reading them (`release` records that point). On a CPU device a frame is used in place (no copy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class DeviceFrame:
    """One uploaded (H, W, 3) uint8 frame; call `ready()` on the stream that reads it before reading."""

    tensor: torch.Tensor
    copied: torch.cuda.Event | None = None

    def ready(self) -> None:
        """Make the current stream wait until the upload has landed (no-op on CPU)."""
        if self.copied is not None:
            torch.cuda.current_stream(self.tensor.device).wait_event(self.copied)


class _Slot:
    """A pinned host buffer and a device buffer of at least `nbytes`, with the events that order their reuse."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.host = torch.empty(0, dtype=torch.uint8)
        self.dev = torch.empty(0, dtype=torch.uint8, device=device)
        self.copied = torch.cuda.Event()
        self.consumed: torch.cuda.Event | None = None

    def fit(self, nbytes: int) -> bool:
        """Grow the buffers to `nbytes`; True when the device buffer is new (allocated on the current stream)."""
        if self.host.numel() >= nbytes:
            return False
        self.host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
        self.dev = torch.empty(nbytes, dtype=torch.uint8, device=self.device)
        return True


class FrameUploader:
    """Uploads (H, W, 3) uint8 frames to `device` through `slots` pinned buffers on a copy stream (CUDA);
    on any other device frames are wrapped as they are."""

    def __init__(self, device: torch.device | str, slots: int = 8) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self._slots = [_Slot(self.device) for _ in range(slots)] if self.cuda else []
        self._stream = torch.cuda.Stream(self.device) if self.cuda else None
        self._next = 0
        self._in_use: list[_Slot] = []

    def upload(self, images: list[np.ndarray]) -> list[DeviceFrame]:
        """Queue the upload of every image; returns them in order, each to be `ready()`-ed before use. Until
        `release`, each frame holds its own slot (more slots are made when a call brings more frames)."""
        while self.cuda and len(self._slots) < len(self._in_use) + len(images):
            self._slots.append(_Slot(self.device))
        return [self._upload(np.ascontiguousarray(image)) for image in images]

    def _upload(self, image: np.ndarray) -> DeviceFrame:
        if not self.cuda:
            return DeviceFrame(torch.from_numpy(image))
        slot = self._slots[self._next]
        self._next = (self._next + 1) % len(self._slots)
        slot.copied.synchronize()  # the host buffer's previous copy has left it
        if slot.fit(image.nbytes):  # fresh device memory may still be read by queued compute work
            self._stream.wait_stream(torch.cuda.current_stream(self.device))
        host = slot.host[:image.nbytes].view(image.shape)
        host.numpy()[...] = image
        with torch.cuda.stream(self._stream):
            if slot.consumed is not None:  # the compute stream has finished reading the device buffer
                self._stream.wait_event(slot.consumed)
            dev = slot.dev[:image.nbytes].view(image.shape)
            dev.copy_(host, non_blocking=True)
            slot.copied.record(self._stream)
        self._in_use.append(slot)
        return DeviceFrame(dev, slot.copied)

    def release(self) -> None:
        """Mark the frames uploaded so far as read by the work queued on the current stream: their buffers
        are rewritten only after that work has run."""
        for slot in self._in_use:
            slot.consumed = torch.cuda.Event()
            slot.consumed.record(torch.cuda.current_stream(self.device))
        self._in_use = []
