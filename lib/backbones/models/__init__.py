"""Backbones, one family a file, each proven against its reference in the tests."""
from backbones.models.simple_cnn import SimpleCNN

__all__ = ["SimpleCNN"]
