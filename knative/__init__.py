"""Deployment tooling for the kustomize tree in this folder: rendering, `make deploy` and per-function rollouts.

Run from the repository root: `python -m knative.deploy …`, `python -m knative.rollout …`.
"""
