"""The inference part of a target: vLLM as a long-lived GPU Deployment (when the gpu component is in), and the
providers the migration Job registers pointing at a Service that is in the render."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

from knative import deploy, render

MODEL_LOAD_SECONDS = 600  # the least a startup probe must allow for downloading and loading a model
HF_CACHE = "/root/.cache/huggingface"


def problems(documents: list[dict]) -> list[str]:
    found = _provider_problems(documents)
    vllm = render.find(documents, "Deployment", "vllm")
    if vllm is not None:
        found += _vllm_problems(vllm, documents)
    return found


def _vllm_problems(deployment: dict, documents: list[dict]) -> list[str]:
    found = []
    pod = render.pod_specs(deployment)[0]
    container = pod["containers"][0]
    resources = container.get("resources") or {}
    if str((resources.get("limits") or {}).get("nvidia.com/gpu", "0")) in {"0", ""}:
        found.append("vllm: limits must request nvidia.com/gpu")
    if (deployment["spec"].get("strategy") or {}).get("type") != "Recreate":
        found.append("vllm: strategy Recreate (one GPU and a ReadWriteOnce cache cannot be held by two pods)")
    volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
    mounts = {mount["mountPath"]: volumes.get(mount["name"], {}) for mount in container.get("volumeMounts") or []}
    if (mounts.get("/dev/shm", {}).get("emptyDir") or {}).get("medium") != "Memory":
        found.append("vllm: /dev/shm must be a Memory emptyDir")
    claim = (mounts.get(HF_CACHE, {}).get("persistentVolumeClaim") or {}).get("claimName")
    if claim is None or render.find(documents, "PersistentVolumeClaim", claim) is None:
        found.append(f"vllm: the model cache {HF_CACHE} must be a PersistentVolumeClaim of the render")
    startup = container.get("startupProbe") or {}
    if (startup.get("httpGet") or {}).get("path") != "/health":
        found.append("vllm: startupProbe must GET /health")
    elif startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) < MODEL_LOAD_SECONDS:
        found.append(f"vllm: the startup probe allows less than {MODEL_LOAD_SECONDS} s for the model to load")
    for probe in ("readinessProbe", "livenessProbe"):
        if ((container.get(probe) or {}).get("httpGet") or {}).get("path") != "/health":
            found.append(f"vllm: {probe} must GET /health")
    if not any(argument.startswith("--served-model-name") for argument in container.get("args") or []):
        found.append("vllm: --served-model-name names the model clients ask for")
    return found


def providers_file(documents: list[dict]) -> dict | None:
    """The providers file the migration Job loads: PROVIDERS_FILE, in the ConfigMap mounted at its folder."""
    job = render.find(documents, "Job", deploy.MIGRATION_JOB)
    if job is None:
        return None
    container = render.containers(job)[0]
    path = Path(next((v.get("value") for v in container.get("env") or [] if v["name"] == "PROVIDERS_FILE"), "/"))
    mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts") or []}
    volumes = {volume["name"]: volume for volume in render.pod_specs(job)[0].get("volumes") or []}
    volume = volumes.get(mounts.get(str(path.parent), ""), {})
    config_map = render.find(documents, "ConfigMap", (volume.get("configMap") or {}).get("name", ""))
    if config_map is None or path.name not in (config_map.get("data") or {}):
        return None
    return yaml.safe_load(config_map["data"][path.name])


def _provider_problems(documents: list[dict]) -> list[str]:
    providers = providers_file(documents)
    if providers is None:
        return ["providers: the migration Job's PROVIDERS_FILE is no file of a rendered ConfigMap"]
    found = []
    for provider in providers.get("providers") or []:
        url = urlsplit(provider.get("base_url") or "")
        host = (url.hostname or "").split(".")
        service = render.find(documents, "Service", host[0], api_version="v1")
        ports = {port.get("port") for port in (service or {"spec": {}})["spec"].get("ports") or []}
        if service is None or host[1:] != [service["metadata"]["namespace"], "svc", "cluster", "local"] \
                or url.port not in ports or url.path != "/v1":
            found.append(f"providers: {provider.get('name')} at {provider.get('base_url')} is no inference "
                         "Service of the render (http://<service>.<namespace>.svc.cluster.local:<port>/v1)")
    return found
