"""Input formatting for in-process engines: messages -> one prompt string via the model's own
chat template (read from the GGUF), rendered in a sandboxed Jinja environment because the template
is data shipped with a model file, not trusted code."""

from __future__ import annotations

from collections.abc import Sequence

from jinja2.sandbox import ImmutableSandboxedEnvironment

from agentkit.backends.base import Message
from agentkit.errors import ConfigError

# ChatML, the format SmolLM2 and many small models use; only a fallback when a file has no template.
_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatTemplate:
    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = "") -> None:
        self.source = source or _CHATML
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        try:
            self._template = env.from_string(self.source)
        except Exception as exc:  # jinja2 raises several unrelated types for a bad template
            raise ConfigError(f"the model's chat template does not compile: {exc}") from None
        self._bos = bos_token
        self._eos = eos_token

    def render(self, messages: Sequence[Message]) -> str:
        return self._template.render(
            messages=[m.model_dump() for m in messages],
            add_generation_prompt=True,
            bos_token=self._bos,
            eos_token=self._eos,
        )
