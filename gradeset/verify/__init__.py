"""gradeset.verify"""
