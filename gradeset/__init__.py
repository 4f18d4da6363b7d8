"""gradeset: build graded post-training datasets for SFT, DPO, GRPO/GSPO/Dr. GRPO and KTO."""

__version__ = "0.1.0"
