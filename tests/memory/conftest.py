"""The memory tests embed through the same local OpenAI-compatible server as the LLM tests."""

from tests.llm.conftest import fake_llm

__all__ = ["fake_llm"]
