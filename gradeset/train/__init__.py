"""gradeset.train"""
