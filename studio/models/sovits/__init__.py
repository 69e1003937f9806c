"""models/sovits"""
