"""gradeset.sources"""
