"""Our rules for every function's Knative Service: what the schema cannot say (values, and the Service against the
rest of its render). Each problem starts with the rule's name, which the broken fixtures name in `expect`."""
from __future__ import annotations

import re
from functools import lru_cache

from knative import deploy, render
from shared.settings import PlatformSettings
from tests.deploy import knative_schema

MAX_TIMEOUT_SECONDS = 600  # Knative's default max-revision-timeout-seconds
TIMEOUT_REASON = "jan.ai/timeout-reason"
ALWAYS_ON = "jan.ai/always-on"
TOKEN_ISSUER = "llm"
# Functions behind Kong: the header Kong sets to the connection's address (replacing the client's own), which the
# functions must count per-address limits by, since behind the queue-proxy every TCP peer is 127.0.0.1.
CLIENT_ADDRESS_HEADER = "X-Real-IP"
# Functions that write public links (share_url) need the platform's public base URL: Kong rewrites Host.
PUBLIC_LINK_FUNCTIONS = {"llm"}
# Knative features whose flag is on in a default install (config-features); every other flagged field needs an
# operator to enable it first, so our Services use none.
DEFAULT_ENABLED_FEATURES = {"kubernetes.podspec-volumes-emptydir"}
FEATURE_FLAG = re.compile(r"behind a feature flag - ([a-z0-9.-]+)")


def problems(service: dict, documents: list[dict], environment: str) -> list[str]:
    """Every rule the Service breaks, in the render `documents` of a `dev` or `prod` target."""
    name = service["metadata"]["name"]
    spec = service.get("spec") or {}
    template = spec.get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    pod = template.get("spec") or {}
    found: list[str] = []

    if (service["metadata"].get("labels") or {}).get("networking.knative.dev/visibility") != "cluster-local":
        found.append("visibility: label networking.knative.dev/visibility must be cluster-local (only Kong is public)")
    if "selector" in spec:
        found.append("no-selector: spec.selector is not a Knative field (commonLabels adds it; use labels with "
                     "includeSelectors: false)")

    always_on = (service["metadata"].get("labels") or {}).get(ALWAYS_ON) == "true"
    min_scale = _integer(annotations.get("autoscaling.knative.dev/min-scale"))
    max_scale = _integer(annotations.get("autoscaling.knative.dev/max-scale"))
    if min_scale is None:
        found.append("min-scale: autoscaling.knative.dev/min-scale must be set")
    elif always_on and min_scale < 1:
        found.append(f"min-scale: an always-on Service ({ALWAYS_ON}) needs min-scale >= 1")
    elif not always_on and environment == "prod" and min_scale != 0:
        found.append(f"min-scale: {min_scale} in production; functions scale to zero (min-scale \"0\")")
    elif not always_on and environment == "dev" and min_scale > 1:
        found.append(f"min-scale: {min_scale} in development; one warm pod is enough for file sync")
    if max_scale is None or max_scale < 1:
        found.append("max-scale: autoscaling.knative.dev/max-scale must be a positive integer")
    elif min_scale is not None and max_scale < min_scale:
        found.append(f"max-scale: {max_scale} is below min-scale {min_scale}")

    target = _integer(annotations.get("autoscaling.knative.dev/target"))
    hard_limit = pod.get("containerConcurrency")
    if annotations.get("autoscaling.knative.dev/metric", "concurrency") not in {"concurrency", "rps"}:
        found.append("concurrency: autoscaling.knative.dev/metric must be concurrency or rps")
    if target is None or target < 1:
        found.append("concurrency: autoscaling.knative.dev/target (the per-pod concurrency target) must be set")
    if not isinstance(hard_limit, int) or hard_limit < 0:
        found.append("concurrency: containerConcurrency must be set (0 = no hard limit)")
    elif target and hard_limit and hard_limit < target:
        found.append(f"concurrency: containerConcurrency {hard_limit} is below the target {target}")

    found += _timeout_problems(service, pod, documents)
    found += _container_problems(name, pod, environment)
    found += _revision_problems(name, spec, template)
    found += _feature_flag_problems(service)
    found += _reference_problems(pod, documents)
    found += _public_address_problems(name, pod, documents)
    return found


def _public_address_problems(name: str, pod: dict, documents: list[dict]) -> list[str]:
    environment = _environment(pod, documents)
    found = []
    if environment.get("CLIENT_ADDRESS_HEADER", "").lower() != CLIENT_ADDRESS_HEADER.lower():
        found.append(f"client-address: CLIENT_ADDRESS_HEADER must be {CLIENT_ADDRESS_HEADER} (behind the "
                     "queue-proxy every peer is 127.0.0.1)")
    base = environment.get("PUBLIC_BASE_URL", "")
    if name in PUBLIC_LINK_FUNCTIONS and not re.fullmatch(r"https?://[^/\s]+", base):
        found.append("public-base-url: PUBLIC_BASE_URL must be the platform's public http(s) URL (no path); Kong "
                     "sends the cluster-local Host")
    return found


def _timeout_problems(service: dict, pod: dict, documents: list[dict]) -> list[str]:
    found = []
    timeout, response_start = pod.get("timeoutSeconds"), pod.get("responseStartTimeoutSeconds")
    if not isinstance(timeout, int) or not isinstance(response_start, int):
        return ["timeouts: timeoutSeconds and responseStartTimeoutSeconds must both be set (long generations)"]
    reason = (service["metadata"].get("annotations") or {}).get(TIMEOUT_REASON)
    if timeout > MAX_TIMEOUT_SECONDS and not reason:
        found.append(f"timeouts: timeoutSeconds {timeout} exceeds {MAX_TIMEOUT_SECONDS} (Knative's default ceiling); "
                     f"document why in the {TIMEOUT_REASON} annotation and raise max-revision-timeout-seconds")
    if response_start > timeout:
        found.append(f"timeouts: responseStartTimeoutSeconds {response_start} exceeds timeoutSeconds {timeout}")
    idle = pod.get("idleTimeoutSeconds")
    if idle and idle > timeout:
        found.append(f"timeouts: idleTimeoutSeconds {idle} exceeds timeoutSeconds {timeout}")
    upstream = _environment(pod, documents).get("UPSTREAM_TIMEOUT_SECONDS")
    if upstream is not None and float(upstream) >= timeout:
        found.append(f"timeouts: UPSTREAM_TIMEOUT_SECONDS {upstream} must be below timeoutSeconds {timeout}, so a "
                     "slow model ends in the function's own 504")
    # A job runs inside one request (shared/jobs.py): Knative must never cut one that keeps to its maximum.
    job_maximum = _environment(pod, documents).get("JOB_MAX_DURATION_SECONDS")
    job_maximum = float(job_maximum) if job_maximum is not None else PlatformSettings.job_max_duration_seconds
    if job_maximum >= timeout:
        found.append(f"timeouts: JOB_MAX_DURATION_SECONDS {job_maximum:g} must be below timeoutSeconds {timeout}, so "
                     "a job ends before Knative cuts its request")
    return found


def _container_problems(name: str, pod: dict, environment: str) -> list[str]:
    containers = pod.get("containers") or []
    if len(containers) != 1:
        return [f"container: one container per function, found {len(containers)}"]
    container = containers[0]
    found = []
    ports = container.get("ports") or []
    if len(ports) != 1:
        found.append("container: exactly one port (Knative routes to one)")
    port = ports[0].get("containerPort") if ports else None
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        action = (container.get(probe) or {}).get("httpGet") or {}
        if action.get("path") != path:
            found.append(f"probes: {probe} must GET {path}")
        if action.get("port") not in (None, port):
            found.append(f"probes: {probe} must probe the container port {port}")
    image = container.get("image", "")
    if image != f"jan-{name}" and not re.fullmatch(rf"(.+/)?jan-{re.escape(name)}[:@].+", image):
        found.append(f"image: {image!r} is not this function's artifact jan-{name}")
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    if not {"cpu", "memory"} <= set(requests) or "memory" not in limits:
        found.append("resources: requests cpu and memory and a memory limit must be set")
    security = container.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True or security.get("allowPrivilegeEscalation") is not False:
        found.append("security: runAsNonRoot true and allowPrivilegeEscalation false")
    if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
        found.append("security: drop ALL capabilities")
    if environment == "prod" and security.get("readOnlyRootFilesystem") is not True:
        found.append("security: readOnlyRootFilesystem true in production")
    if pod.get("automountServiceAccountToken") is not False:
        found.append("security: automountServiceAccountToken false (functions never call the Kubernetes API)")
    if name != TOKEN_ISSUER and _sees_signing_key(container, pod):
        found.append(f"signing-key: only the token issuer ({TOKEN_ISSUER}) may see the token signing key")
    return found


def _sees_signing_key(container: dict, pod: dict) -> bool:
    for variable in container.get("env") or []:
        reference = (variable.get("valueFrom") or {}).get("secretKeyRef") or {}
        if variable.get("name", "").startswith("TOKEN_SIGNING_KEY") or reference.get("key") == deploy.SIGNING_KEY_FILE:
            return True
    for volume in pod.get("volumes") or []:
        secret = volume.get("secret") or {}
        if secret.get("secretName") == deploy.KEYS_SECRET:
            items = secret.get("items")
            if not items or any(item.get("key") == deploy.SIGNING_KEY_FILE for item in items):
                return True
    return False


def _revision_problems(name: str, spec: dict, template: dict) -> list[str]:
    revision = (template.get("metadata") or {}).get("name")
    traffic = spec.get("traffic")
    if traffic is None:
        if revision is not None:
            return [f"revision: {revision!r} is named outside a rollout; base revisions stay unnamed"]
        return []
    found = []
    if revision is None or not revision.startswith(f"{name}-"):
        found.append(f"revision: a rollout names its revision {name}-<version>, found {revision!r}")
    if sum(target.get("percent", 0) for target in traffic) != 100:
        found.append("revision: traffic percents must add up to 100")
    tags = [target.get("tag") for target in traffic if target.get("tag")]
    if len(tags) != len(set(tags)):
        found.append("revision: traffic tags must be unique")
    for target in traffic:
        named = target.get("revisionName")
        if named is not None and not named.startswith(f"{name}-"):
            found.append(f"revision: traffic names {named!r}, not a revision of {name}")
    return found


@lru_cache(maxsize=1)
def feature_flagged_fields() -> dict[tuple, str]:
    """Field paths of the CRD that Knative accepts only behind a feature flag, with the flag's name."""
    return _flagged(knative_schema.crd_schema(), ())


def _flagged(node: dict, path: tuple) -> dict[tuple, str]:
    found = {}
    flag = FEATURE_FLAG.search(node.get("description") or "")
    if flag and path:
        found[path] = flag.group(1)
    for key, child in (node.get("properties") or {}).items():
        found.update(_flagged(child, path + (key,)))
    if isinstance(node.get("items"), dict):
        found.update(_flagged(node["items"], path + ("[]",)))
    return found


def _feature_flag_problems(service: dict) -> list[str]:
    return [
        f"feature-flag: {'.'.join(path)} needs Knative's {flag}, which is off by default"
        for path, flag in feature_flagged_fields().items()
        if flag not in DEFAULT_ENABLED_FEATURES and _present(service, path)
    ]


def _reference_problems(pod: dict, documents: list[dict]) -> list[str]:
    found = []
    for kind, name, key in _references(pod):
        rendered = render.find(documents, kind, name)
        if rendered is not None:
            keys = set(rendered.get("data") or {}) | set(rendered.get("stringData") or {})
        elif (kind, name) in deploy.EXTERNAL_OBJECTS:
            keys = deploy.EXTERNAL_OBJECTS[(kind, name)]
        else:
            found.append(f"references: {kind} {name} is neither rendered nor created by knative/deploy.py")
            continue
        if key is not None and key not in keys:
            found.append(f"references: {kind} {name} has no key {key!r}")
    return found


def _references(pod: dict) -> list[tuple[str, str, str | None]]:
    found = []
    for container in pod.get("containers") or []:
        for source in container.get("envFrom") or []:
            for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if field in source:
                    found.append((kind, source[field]["name"], None))
        for variable in container.get("env") or []:
            reference = variable.get("valueFrom") or {}
            for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if field in reference:
                    found.append((kind, reference[field]["name"], reference[field]["key"]))
    for volume in pod.get("volumes") or []:
        for field, kind, name_field in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
            if field in volume:
                items = volume[field].get("items") or [{}]
                found += [(kind, volume[field][name_field], item.get("key")) for item in items]
    return found


def _environment(pod: dict, documents: list[dict]) -> dict[str, str]:
    """The container's plain environment: its ConfigMaps' data overlaid by its literal env values."""
    container = (pod.get("containers") or [{}])[0]
    values: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            config_map = render.find(documents, "ConfigMap", source["configMapRef"]["name"]) or {}
            values.update(config_map.get("data") or {})
    values.update({v["name"]: v["value"] for v in container.get("env") or [] if "value" in v})
    return values


def _present(node, path: tuple) -> bool:
    if not path:
        return node is not None
    if path[0] == "[]":
        return isinstance(node, list) and any(_present(item, path[1:]) for item in node)
    return isinstance(node, dict) and path[0] in node and _present(node[path[0]], path[1:])


def _integer(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
