"""gradeset.generate"""
