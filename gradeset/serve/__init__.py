"""Verifiers served as online RL rewards: ``gradeset serve`` (OpenRLHF's remote reward
protocol and a batch endpoint), a verl ``compute_score`` entry point and a TRL async reward.

Heavy or optional pieces are imported by their modules, not here, so
``import gradeset.serve.verl_reward`` stays cheap inside a trainer's reward worker.
"""

from gradeset.serve.app import ServeConfig

__all__ = ["ServeConfig"]
