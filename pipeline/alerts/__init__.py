"""Alerts: statistically sound drops and spikes per brand, channel and touchpoint, each explained.

series.py (what is watched, one query per window) -> stats.py (the tests) ->
detect.py (one evaluation, false alarms controlled) -> explain.py + words.py
(why) -> ledger.py (alert records in ClickHouse) -> watch.py (one cycle).
"""
