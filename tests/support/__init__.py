"""Helpers the tests share (and the benchmarks may use): real processes, real Redis and Sentinels, a
round-robin balancer, the official client in either protocol era, raw HTTP and raw sockets.

Test modules import from here, never from one another; nothing here imports a test module or `bench`.
"""
