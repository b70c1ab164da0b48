"""The jaxmix recipes, one file per paper row (`get_config(arg)` each).

Edited here, in the repository's `configs/`; packaged as `jaxmix.configs`,
so a pip-installed jaxmix carries them. Recipes import their bases by that
name (`from jaxmix.configs import default`), and `--config` finds a recipe
by its path relative to this directory when that path is not a local file
(`jaxmix.train.recipes`).
"""
