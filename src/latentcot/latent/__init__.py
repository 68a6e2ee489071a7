"""The batched latent loop shared by every latent method (Coconut, CODI, SIM-CoT, EndoCoT)."""

from latentcot.latent.generate import Generation, generate_from_cache
from latentcot.latent.loop import LatentForward, extend, latent_forward, lm_loss, position_ids, think

__all__ = [
    "Generation",
    "LatentForward",
    "extend",
    "generate_from_cache",
    "latent_forward",
    "lm_loss",
    "position_ids",
    "think",
]
