"""The models behind the loop.

- `schemas`: the JSON each VLM role answers with (pydantic).
- `protocols`: the VLM and VGM protocols, their requests, replies and errors.
- `gate`: the one GPU gate every model on the GPU waits for.
- `availability`: the cheap probes behind each backend's availability line (key, CUDA, cached weights).
- `prompts`, `prompted`: the prompt of each VLM role and the repair-once loop every real VLM shares.
- `gemini`, `local_vlm`: real VLMs (google-genai; transformers). `video_models`, `veo`: real VGMs
  (diffusers, one table of models; google-genai). Each imports its heavy library only when used.

The protocols and schemas are re-exported here, so `from collabvr.backends import VLM, Plan` works.
"""

from collabvr.backends.protocols import (
    VGM, VLM, BackendCancelled, BackendError, BackendInfo, ClipView, Critic, CritiqueRequest, GeneratedClip, GenerateRequest, HistoryItem,
    JudgeRequest, MalformedOutput, PlanRequest, RouteRequest, RubricJudge, SelectRequest, SplitContext, Usage,
    VerifyRequest, VLMReply,
)
from collabvr.backends.schemas import (
    CriterionScore, Critique, ErrorType, Plan, RouteDecision, RubricJudgement, Selection, Verdict,
)

__all__ = [
    "VGM", "VLM", "BackendCancelled", "BackendError", "BackendInfo", "ClipView", "Critic", "Critique", "CritiqueRequest", "CriterionScore", "ErrorType",
    "GeneratedClip", "GenerateRequest", "HistoryItem", "JudgeRequest", "MalformedOutput", "Plan", "PlanRequest",
    "RouteDecision", "RouteRequest", "RubricJudge", "RubricJudgement", "SelectRequest", "Selection", "SplitContext",
    "Usage", "Verdict", "VerifyRequest", "VLMReply",
]
