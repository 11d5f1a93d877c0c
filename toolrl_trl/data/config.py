"""The data options of every recipe, as a dataclass that TrlParser combines with TRL's own configs."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolrl_trl import grammar, synthetic

#: What ``prompt_truncation`` may say.
PROMPT_TRUNCATIONS = ("drop", "left")
#: What ``split_method`` may say.
SPLIT_METHODS = ("random", "paper")


@dataclass
class DataConfig:
    """Where the rows come from and how they are checked, filtered and split.

    Field names avoid those of TRL's ``GRPOConfig``, ``SFTConfig``, ``ModelConfig`` and
    ``ScriptArguments`` (TrlParser merges them into one namespace); a test guards this.
    """

    data_source: str = field(
        default="synthetic",
        metadata={
            "help": "Rows to train on: a local file or folder (ToolRL raw JSON, ToolRL processed parquet, xLAM-style "
            "JSON/JSONL, or a folder saved by `python -m toolrl_trl.data prepare`), a URL, a Hugging Face Hub dataset "
            "id, or 'synthetic' for the embedded seeded generator."
        },
    )
    data_test_source: str | None = field(
        default=None,
        metadata={
            "help": "Optional separate source for the test split (same kinds as data_source). When set, no split is "
            "cut from data_source and its own test split, if any, is ignored."
        },
    )
    max_prompt_length: int | None = field(
        default=2048,
        metadata={
            "help": "Longest chat-templated prompt (with the generation prompt), in tokens; prompt_truncation says what "
            "happens to longer ones. Needs a tokenizer (the training entry points pass the model's). TRL itself no "
            "longer truncates prompts. None disables."
        },
    )
    prompt_truncation: str = field(
        default="drop",
        metadata={
            "help": "What happens to a prompt longer than max_prompt_length: 'drop' the row (counted and logged), or "
            "'left': keep its last max_prompt_length tokens, as the paper's code did (verl truncation='left'), so the "
            "user turn and the generation prompt survive and the start of the system prompt goes (counted and "
            "logged). With 'left' and a tokenizer, RL rows carry the prompt as chat-templated text (what GRPOTrainer "
            "tokenizes as it is) and the messages in a 'prompt_messages' column. SFT rows are never cut: with 'left' "
            "they are kept whole (counted and logged) and SFTConfig.max_length bounds them."
        },
    )
    output_format: str = field(
        default="toolrl",
        metadata={
            "help": "How prompts and reference turns are written. 'toolrl': the paper's grammar (its system prompt "
            "lists the tools in prose; <think>, <tool_call> with one JSON {name, parameters} per line, <response>). "
            "'native': the model's own chat template with tools= (Qwen2.5: <tool_call> JSON {name, arguments} "
            "blocks; Llama 3.x: one JSON call per turn), what OpenAI-compatible servers parse; rows are rendered with "
            "the model's tokenizer, so it needs one. The ground truth stays in the paper's grammar either way."
        },
    )
    skip_invalid_rows: bool = field(
        default=False,
        metadata={
            "help": "Drop rows that fail validation (and log how many and why) instead of raising DataValidationError "
            "at the first one."
        },
    )
    test_size: float = field(
        default=0.02,
        metadata={
            "help": "Share of rows held out as the test split when the source has none (the paper used 2%). 0 gives an "
            "empty test split."
        },
    )
    split_method: str = field(
        default="random",
        metadata={
            "help": "How the test split is cut when the source has none. 'random': datasets' train_test_split seeded "
            "by dataset_seed, after validation and the length filter. 'paper': the paper's dataset/rlla_4k_raw/rlla.py "
            "partition: the raw rows in file order shuffled by numpy's legacy np.random.seed(31415) + "
            "np.random.shuffle, the last int(n * test_size) held out (n counts every raw row); validation and the "
            "length filter then run inside each part, so a dropped row moves no other row across the split "
            "(dataset_seed is not used). 'paper' refuses sources too small to hold out a row (under 50 rows at "
            "test_size 0.02)."
        },
    )
    dataset_seed: int = field(
        default=42,
        metadata={
            "help": "Seed of the train/test split, of the max_*_samples subsets and of the synthetic generator."
        },
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Keep a seeded random subset of this many train rows (e.g. 400 for an SFT400-style set)."},
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Keep a seeded random subset of this many test rows."}
    )
    synthetic_train_size: int = field(
        default=4000, metadata={"help": "Synthetic source: number of train tasks (the paper's RL set has 4k)."}
    )
    synthetic_test_size: int = field(default=100, metadata={"help": "Synthetic source: number of test tasks."})
    synthetic_held_out_tools: float = field(
        default=0.0,
        metadata={
            "help": "Synthetic source: tools never shown in training, as a count (>= 1) or a fraction (< 1) of the "
            "catalogue. With any held out, every test task involves one, so the test split measures generalisation "
            "to unseen tools."
        },
    )
    synthetic_task_weights: str = field(
        default=",".join(f"{kind}={weight:g}" for kind, weight in synthetic.DEFAULT_TASK_WEIGHTS.items()),
        metadata={
            "help": f"Synthetic source: relative frequency of each task kind, as kind=weight pairs separated by commas. "
            f"Kinds: {', '.join(synthetic.TASK_KINDS)}; unnamed kinds get weight 0."
        },
    )
    synthetic_max_tools_per_prompt: int = field(
        default=5, metadata={"help": "Synthetic source: most tools a system prompt lists (targets plus distractors)."}
    )

    def __post_init__(self) -> None:
        if not self.data_source:
            raise ValueError("data_source must name a path, URL, hub id or 'synthetic'")
        if not 0 <= self.test_size < 1:
            raise ValueError(f"test_size must be in [0, 1), got {self.test_size}")
        for name, valid in (
            ("prompt_truncation", PROMPT_TRUNCATIONS),
            ("split_method", SPLIT_METHODS),
            ("output_format", grammar.OUTPUT_FORMATS),
        ):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {list(valid)}, got {getattr(self, name)!r}")
        if self.max_prompt_length is not None and self.max_prompt_length <= 0:
            raise ValueError(f"max_prompt_length must be positive or None, got {self.max_prompt_length}")
        for name in ("max_train_samples", "max_test_samples"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {value}")
        if self.synthetic_train_size < 0 or self.synthetic_test_size < 0:
            raise ValueError("synthetic_train_size and synthetic_test_size must be >= 0")
        synthetic.parse_task_weights(self.synthetic_task_weights)
        synthetic.select_held_out_tools(self.synthetic_held_out_tools, self.dataset_seed)
        if self.synthetic_max_tools_per_prompt < 2:
            raise ValueError(f"synthetic_max_tools_per_prompt must be >= 2, got {self.synthetic_max_tools_per_prompt}")
