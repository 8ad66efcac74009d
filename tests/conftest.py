import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Tests never reach a real model service: a key or a registration file in the developer's environment would
# make real backends "available" and send requests out. Tests that need them set their own (loopback) ones.
for _name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "COLLABVR_BACKENDS"):
    os.environ.pop(_name, None)
