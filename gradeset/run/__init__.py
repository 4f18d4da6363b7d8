"""gradeset.run"""
