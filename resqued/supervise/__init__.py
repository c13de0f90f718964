"""Supervision shared by the master and env mode: settling the jobs of workers
that died (lostworkers).
"""
