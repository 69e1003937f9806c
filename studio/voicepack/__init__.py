"""voicepack"""
