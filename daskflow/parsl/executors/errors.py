"""``parsl.executors.errors``: the executor errors scripts catch by name."""

from __future__ import annotations

from ..errors import ParslError


class ExecutorError(ParslError):
    """An executor failed; ``executor`` names it (a label or the executor)."""

    def __init__(self, executor, reason: str):
        super().__init__(executor, reason)
        self.executor = executor
        self.reason = reason

    def __str__(self) -> str:
        label = getattr(self.executor, "label", self.executor)
        return f"Executor {label} failed due to: {self.reason}"


class BadStateException(ExecutorError):
    """The executor is in a bad state after ``exception``."""

    def __init__(self, executor, exception: BaseException):
        super().__init__(executor, str(exception))


class UnsupportedFeatureError(ExecutorError):
    """An app asked for a feature its executor lacks."""

    def __init__(self, feature: str, current_executor: str, target_executor: str | None):
        reason = f"The {feature} feature is unsupported in {current_executor}."
        if target_executor:
            reason += f" Please use {target_executor} instead."
        super().__init__(current_executor, reason)


class InvalidResourceSpecification(ExecutorError):
    """A ``parsl_resource_specification`` names keys its executor does not take."""

    def __init__(self, invalid_keys, message: str = ""):
        self.invalid_keys = set(invalid_keys)
        super().__init__(None, message or f"invalid resource specification keys: "
                                          f"{sorted(self.invalid_keys)}")

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self):
        return (type(self), (self.invalid_keys, self.reason))


class ScalingFailed(ExecutorError):
    """Scaling the executor's blocks out failed."""


class BadMessage(ParslError):
    """A message between Parsl's components could not be understood."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


__all__ = ["BadMessage", "BadStateException", "ExecutorError", "InvalidResourceSpecification",
           "ScalingFailed", "UnsupportedFeatureError"]
