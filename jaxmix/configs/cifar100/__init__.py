"""CIFAR-100 recipes."""
