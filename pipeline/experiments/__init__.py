"""Stage 3, experiments: training, evaluation and scoring, cross-validation, sweeps,
comparing runs, and MLflow tracking."""
