"""latentcot.visual"""
