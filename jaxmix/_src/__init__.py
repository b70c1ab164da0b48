"""The library ops behind `import jaxmix`; import them from `jaxmix`.

Modules here hold one concept each (boxes, labels, mixing, erasing,
sharding, input checks) and import only JAX and NumPy. Their paths are not
API: `jaxmix.__all__` is.
"""
