"""gradeset.evaluate"""
