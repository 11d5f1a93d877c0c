"""ToolRL as a TRL recipe: GRPO with the paper's rule-based tool-calling rewards."""

__version__ = "0.1.0"
