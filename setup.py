"""Only the compiled part of the build; everything else is in pyproject.toml.

The cheap path's hot loops (core/_textkernel.c) are optional: where no C compiler or Python
headers are found the install still succeeds and core/text.py's pure-Python definitions run,
with identical results.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("collapseguard.core._textkernel", ["core/_textkernel.c"], optional=True)])
