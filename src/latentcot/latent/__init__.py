"""latentcot.latent"""
