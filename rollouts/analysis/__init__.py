"""Analysis of a rollout: a new version's tasks judged against the old
version's tasks over the same interval (docs/analysis.md).

templates.py  what is measured for each role, in PromQL and in words
rules.py      pure rules: one measurement's phase, the run's phase
prometheus.py the one module that queries Prometheus over HTTP
"""
