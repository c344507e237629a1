"""Stage 4, inference: the classifier over new articles, prediction records and files, the
predict run, the stance report, Spark scoring."""
