"""gradeset.shape"""
