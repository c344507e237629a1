"""Stage 1, data: corpus files and their checks, segmentation, actor matching and
attribution, reading articles, datasets and splits, corpus statistics, agreement."""
