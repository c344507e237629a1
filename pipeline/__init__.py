"""Actor-level stance classification on news text."""
