"""Offline evaluation (`digest eval`): replay an interaction log day by day and score recommenders.

protocol: the Recommender interface and data classes; data: loaders; replay: the seeded day-by-day
protocol; metrics: P@k, nDCG@k, recall with bootstrap intervals; baselines: random, keyword and
arxiv-sanity-lite's SVM; project: the project's ranking as a recommender; report: table, JSON, plot.
"""
