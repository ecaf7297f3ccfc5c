"""ganzoo: a plugin-based GAN suite."""
__version__ = "0.1.0"
