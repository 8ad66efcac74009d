"""The models behind the loop.

- `schemas`: the JSON each VLM role answers with (pydantic).
- `protocols`: the VLM and VGM protocols, their requests, replies and errors.
- `registry`: which backends exist, whether each can run here, building one from a recorded spec (once
  per process), and the success test of a simulated task.
- `gate`: the one GPU gate every model on the GPU waits for.

The protocols and schemas are re-exported here, so `from collabvr.backends import VLM, Plan` works.
"""

from collabvr.backends.protocols import (
    VGM, VLM, BackendCancelled, BackendError, BackendInfo, ClipView, GeneratedClip, GenerateRequest, HistoryItem,
    MalformedOutput, PlanRequest, RouteRequest, SelectRequest, SplitContext, Usage, VerifyRequest, VLMReply,
)
from collabvr.backends.schemas import ErrorType, Plan, RouteDecision, Selection, Verdict

__all__ = [
    "VGM", "VLM", "BackendCancelled", "BackendError", "BackendInfo", "ClipView", "ErrorType", "GeneratedClip",
    "GenerateRequest", "HistoryItem", "MalformedOutput", "Plan", "PlanRequest", "RouteDecision", "RouteRequest",
    "SelectRequest", "Selection", "SplitContext", "Usage", "Verdict", "VerifyRequest", "VLMReply",
]
