"""latentcot.methods"""
