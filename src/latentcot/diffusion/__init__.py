"""latentcot.diffusion"""
