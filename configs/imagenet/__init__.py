"""ImageNet recipes."""
