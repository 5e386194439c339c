"""Re-export: the question text every generic question-answering agent reads lives in
``agentkit.vocab`` (patterns must not import the eval harness to build their inputs)."""

from agentkit.vocab import JUDGE_QUESTION, OPTIONS_HINT, question_text

__all__ = ["JUDGE_QUESTION", "OPTIONS_HINT", "question_text"]
