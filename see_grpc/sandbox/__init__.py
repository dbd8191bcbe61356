"""Checking and running user strategy code in restricted worker processes.

pool.py is the server side, worker.py the process, policy.py what code may do. This package imports nothing
itself, so that a worker starts without loading the server's modules.
"""
