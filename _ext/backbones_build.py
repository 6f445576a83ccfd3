"""Sphinx extension for the book build: settings for the kernels that execute the chapters.

Kernels started by the build inherit this process's environment, so this is the one place
that tells the library it is being rendered into a static page rather than watched live.
"""
import os


def setup(app):
    # A static page cannot animate a progress bar: print each training run's closing line instead.
    os.environ.setdefault("BACKBONES_PROGRESS", "summary")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
