"""Errors a user can act on. Commands turn them into a message and exit code 2."""

from __future__ import annotations


class GradesetError(Exception):
    """A problem with the user's input or options: printed as one clear line, exit 2."""

    exit_code = 2


class InputError(GradesetError):
    """An input that cannot be read at all (not one bad line: those go to the reject file)."""

    def __init__(self, path: str, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class CheckFailed(GradesetError):
    """A dataset check failed: exit 1, so that `gradeset check` can gate CI pipelines."""

    exit_code = 1


class MissingExtra(GradesetError):
    """An optional dependency is not installed; says which extra brings it."""

    def __init__(self, package: str, extra: str, purpose: str = ""):
        why = f" for {purpose}" if purpose else ""
        super().__init__(
            f"{package} is needed{why} but is not installed: pip install 'gradeset[{extra}]'"
        )


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional dependency or raise MissingExtra naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised where extras are absent
        raise MissingExtra(module.split(".")[0], extra, purpose) from exc
