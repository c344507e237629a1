"""Typed configuration, at the bottom of the stages: every other package imports it.

``task`` (actors, targets, labels), ``sections`` (data, model, backends, training, sweep,
tracking), ``experiment`` (the whole ``Config``) and ``loading`` (files, ``extends``,
overrides). The names below are the public ones.
"""

from pipeline.config.experiment import Config, TrackingConfig
from pipeline.config.loading import load_config, load_task, nest_dotted, validate_mapping, with_overrides
from pipeline.config.sections import (
    DEFAULT_HYPOTHESES,
    DEFAULT_STANCE_MODEL,
    FLAT_FIELDS,
    DataConfig,
    ExtraCorpus,
    InputFormat,
    ModelConfig,
    SweepConfig,
    SweepParam,
    TfidfConfig,
    TrainingConfig,
    ZeroShotConfig,
)
from pipeline.config.task import Actor, ConfigError, DatedAlias, Target, TaskConfig

__all__ = [
    "DEFAULT_HYPOTHESES",
    "DEFAULT_STANCE_MODEL",
    "FLAT_FIELDS",
    "Actor",
    "DatedAlias",
    "Config",
    "ConfigError",
    "DataConfig",
    "ExtraCorpus",
    "InputFormat",
    "ModelConfig",
    "SweepConfig",
    "SweepParam",
    "Target",
    "TaskConfig",
    "TfidfConfig",
    "TrackingConfig",
    "TrainingConfig",
    "ZeroShotConfig",
    "load_config",
    "load_task",
    "nest_dotted",
    "validate_mapping",
    "with_overrides",
]
