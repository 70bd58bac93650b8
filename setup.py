# SPDX-License-Identifier: Apache-2.0
import setuptools

setuptools.setup(
    setup_requires=["pbr>=6.0.0", "cffi>=1.15"],
    pbr=True,
    cffi_modules=["dpdk_ext/build_ffi.py:ffibuilder"],
)
