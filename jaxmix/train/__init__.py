"""The jaxmix trainer: optimisers, learning-rate schedules, state and steps.

Nothing is imported here; import the submodules you need, e.g.
`from jaxmix.train import optimizers, schedules`.
"""
