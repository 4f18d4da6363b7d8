"""gradeset.check"""
