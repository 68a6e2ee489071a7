"""latentcot: train, evaluate and look inside models that reason in latent space."""

from latentcot.errors import LatentCotError

__all__ = ["LatentCotError"]
__version__ = "0.1.0"
