"""One exception hierarchy for the whole library.

Callers catch ``AgentkitError`` for anything we raise on purpose; the subclasses say whether the
fault is the caller's input (``ConfigError``/``InputError``: fix and retry), the model's output
(``SchemaViolation``: sample again or escalate) or the backend (``BackendError``: maybe transient).
The CLI maps ``ConfigError`` and ``InputError`` to exit code 2.
"""

from __future__ import annotations


class AgentkitError(Exception):
    """Base of every error agentkit raises deliberately."""


class ConfigError(AgentkitError, ValueError):
    """The caller's configuration or input is wrong; the message says what to change."""


class GraphBuildError(ConfigError):
    """A graph is mis-wired (a key nobody writes, parallel writes without a reducer, ...)."""


class UnsupportedConstraint(ConfigError):
    """The backend cannot enforce the requested output constraint (schema, regex or grammar)."""


class ModelNotFound(ConfigError):
    """A model file or model name does not exist where it was asked for."""


class InputError(AgentkitError, ValueError):
    """Untrusted text (model output, dataset rows) could not be parsed; nothing was executed."""


class SchemaViolation(AgentkitError):
    """Model output does not validate against the requested output type."""

    def __init__(self, message: str, *, text: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.text = text
        self.field = field


class TruncatedOutput(SchemaViolation):
    """A sample stopped at max_tokens (finish_reason 'length'), so its JSON/FOL is cut short."""


class BackendError(AgentkitError):
    """A backend failed to produce a generation."""


class TransientBackendError(BackendError):
    """A backend failure worth retrying (connection reset, 5xx, timeout)."""


class BackendUnavailable(BackendError):
    """The backend stayed unreachable after all retries."""


class GenerationTimeout(BackendError):
    """A server took the request but sent no answer in time. Not transient on purpose: the first
    copy may still be running there, and sending it again would double the load of a server that
    is already too slow (a pool sends it to another endpoint instead)."""


class CassetteMiss(BackendError, ConfigError):
    """A replay cassette has no recording for a request."""


class NoValidSample(AgentkitError):
    """Every sample a pattern drew failed (validation or its verifier), so it has no answer to give.

    A pattern's eval ``prediction`` hook raises it instead of inventing a default answer: the
    harness records the example as wrong (error_type ``NoValidSample``) and still stores the
    pattern's extras, so per-sample statistics count it.
    """


class VerifierError(AgentkitError):
    """A verifier could not reach a verdict for a reason other than the candidate being wrong."""


class ToolError(AgentkitError):
    """A tool call failed (bad arguments or the tool itself raised)."""
