"""digit_scenes (offline) recipes."""
