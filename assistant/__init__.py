"""A multimodal assistant around a vision-language model served by vLLM."""

__version__ = "0.1.0"
