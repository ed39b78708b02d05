"""ParkFlow benchmarks (issue 7): the product beside the raw database limit, in one run.

`python -m bench.run` (or `make bench`) runs every case; see bench/README.md. Nothing here is
imported by the product, and nothing here changes it.
"""
