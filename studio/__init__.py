"""SoVITS Studio: a local, private voice-cloning studio built on a clean GPT-SoVITS v2 engine."""

__version__ = "0.1.0"
