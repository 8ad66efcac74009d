"""Model latency for the simulated backends, so that demos and crash tests see work in flight.

Real VGM calls take minutes and VLM calls seconds; the simulated ones take milliseconds. These wrappers
wait `latency_s` before answering: the VGM wait reports progress in ten ticks and stops at once when the
generation is cancelled.
"""

from __future__ import annotations

import time

from collabvr.backends import (
    VGM, VLM, BackendCancelled, CritiqueRequest, GeneratedClip, GenerateRequest, PlanRequest, RouteRequest, SelectRequest,
    VerifyRequest,
)


TICKS = 10


class SlowVLM:
    def __init__(self, inner: VLM, latency_s: float) -> None:
        self.inner = inner
        self.latency_s = latency_s
        self.info = inner.info

    def plan(self, request: PlanRequest):
        time.sleep(self.latency_s)
        return self.inner.plan(request)

    def verify(self, request: VerifyRequest):
        time.sleep(self.latency_s)
        return self.inner.verify(request)

    def route(self, request: RouteRequest):
        time.sleep(self.latency_s)
        return self.inner.route(request)

    def select(self, request: SelectRequest):
        time.sleep(self.latency_s)
        return self.inner.select(request)

    def critique(self, request: CritiqueRequest):
        time.sleep(self.latency_s)
        return self.inner.critique(request)  # type: ignore[attr-defined]


class SlowVGM:
    def __init__(self, inner: VGM, latency_s: float) -> None:
        self.inner = inner
        self.latency_s = latency_s
        self.info = inner.info
        self.fps = inner.fps

    def generate(self, request: GenerateRequest) -> GeneratedClip:
        for tick in range(TICKS):
            if request.cancel is not None and request.cancel.wait(self.latency_s / TICKS):
                raise BackendCancelled("generation stopped by a person")
            if request.progress is not None:
                request.progress(tick + 1, TICKS + 1)
        return self.inner.generate(request)
