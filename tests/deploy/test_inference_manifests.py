"""Inference in every target: vLLM's Deployment (GPU) and the providers registered at migration pointing at the
inference Service of the render. Broken fixtures must fail."""
from __future__ import annotations

import copy

import pytest

from knative import render
from tests.deploy import inference_rules
from tests.deploy.broken import cases


@pytest.mark.parametrize("target", render.target_names())
def test_inference(renders, target):
    assert inference_rules.problems(renders[target]) == []


def test_gpu_targets_run_vllm_and_cpu_targets_the_model_server(renders):
    for target, documents in renders.items():
        expected = "vllm" if target.endswith("-gpu") else "model-server"
        assert render.find(documents, "Deployment", expected) is not None, target


@pytest.mark.parametrize("broken", cases("inference"))
def test_broken_inference_fails(renders, broken):
    documents = copy.deepcopy(renders[broken.options.get("target", "prod-gpu")])
    index = documents.index(render.find(documents, broken.options["kind"], broken.options["name"]))
    documents[index] = broken.applied_to(documents[index])
    problems = inference_rules.problems(documents)
    assert any(problem.startswith(broken.expect) for problem in problems), problems
