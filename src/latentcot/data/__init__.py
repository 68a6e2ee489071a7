"""latentcot.data"""
