import os
from pathlib import Path

# Tests never reach a model hub: every model is built locally or shipped in a package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
# Built test models and the converted bundled model persist here between runs (gitignored).
TEST_CACHE = ROOT / ".cache" / "test-models"
