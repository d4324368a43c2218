"""The functions: each package is one Knative Service (one image, one dependency group)."""
