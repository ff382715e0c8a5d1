"""Stage 4: analysis. Turn the normalized request table into small, explainable tables: the timeline,
the baseline and incident windows, and who (which clients, networks, requests) made the difference.

All heavy work is an ibis expression run by the engine; Python sees only aggregates (a row per minute,
a row per client of an incident window), never a row per request.
"""
