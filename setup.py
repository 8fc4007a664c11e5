"""The compiled parts of the package: events._chain and events._prepare, the C twins of the
loops in events.chaining and events.batch.

Metadata stays in setup.cfg. Both extensions are optional: without a C compiler (or, for
events._chain, OpenSSL's headers) the install still succeeds and the modules fall back to
their Python loops.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("events._chain", ["events/_chain.c"], libraries=["crypto"], optional=True),
        Extension("events._prepare", ["events/_prepare.c"], optional=True),
    ]
)
