"""The one compiled part of the package: events._chain, the C twin of events.chaining's loop.

Metadata stays in setup.cfg. The extension is optional: without a C compiler or OpenSSL's
headers the install still succeeds and events.chaining falls back to its Python loop.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("events._chain", ["events/_chain.c"], libraries=["crypto"], optional=True)])
