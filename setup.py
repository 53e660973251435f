"""The compiled inner loops (aedaemon/dsp/_native.c); everything else is in pyproject.toml.

Plain C through the buffer protocol: building needs only setuptools, a C compiler and Python's
headers (which PyAudio needs too), not numpy. -O2 without -march=native, and no contraction of
a*b+c into fused multiply-adds, so x86-64 and aarch64 round every expression the same way.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "aedaemon.dsp._native",
            sources=["aedaemon/dsp/_native.c"],
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math", "-Wall"],
            libraries=["m"],
        )
    ]
)
