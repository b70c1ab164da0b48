"""digit_scenes, long-tailed (imbalance ratio 100): with and without CMO."""
