"""latentcot.train"""
