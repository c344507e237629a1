"""Stage 2, models: the stance-model interface (base), input preparation (inputs), the
backends (baselines, transformer, zeroshot, with heads and encoders), the registry that
builds and loads them (registry), and the MLflow pyfunc wrapper (pyfunc)."""
