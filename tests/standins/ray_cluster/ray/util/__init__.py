"""The stand-in's ray.util."""
