"""Experiments: the statistics behind A/B tests, canaries and shadow comparisons."""
