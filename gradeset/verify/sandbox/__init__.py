"""Run model-written Python isolated from the machine; see ``backends`` and ``harness``."""

from gradeset.verify.sandbox.backends import (
                                              ENV_VAR,
                                              INSTALL_HINT,
                                              Backend,
                                              JobResult,
                                              SandboxUnavailable,
                                              choose,
                                              probe,
                                              run_job,
)
from gradeset.verify.sandbox.values import BadValue, decode

__all__ = ["ENV_VAR", "INSTALL_HINT", "Backend", "BadValue", "JobResult", "SandboxUnavailable", "choose", "decode",
           "probe", "run_job"]
