"""The function manifests (functions/*/function.toml) and what is generated from them: every manifest reads, its
dependency group exists, and the committed Knative Services and skaffold blocks are what the manifests give."""
from __future__ import annotations

import shutil
import tomllib

import pytest

from knative import functions, render, skaffold
from shared import function_manifest

PYPROJECT = render.REPO_ROOT / "pyproject.toml"


def test_every_function_folder_has_a_manifest():
    folders = {path.name for path in (render.REPO_ROOT / "functions").iterdir()
               if path.is_dir() and (path / "__init__.py").exists()}
    assert folders == set(render.function_names())


def test_each_manifests_dependency_groups_exist_in_pyproject():
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    missing = [f"{name}: extra {extra!r}" for name, manifest in function_manifest.all_manifests().items()
               for extra in manifest.image_extras if extra not in extras]
    assert missing == [], f"add these groups to pyproject.toml [project.optional-dependencies]: {missing}"


def test_the_generated_deploy_files_follow_the_manifests():
    assert functions.out_of_date() == []


def test_each_function_is_named_in_the_knative_base():
    base = "\n".join(path.read_text() for path in (render.REPO_ROOT / "knative" / "base").rglob("*.yaml"))
    assert [name for name in render.function_names() if f"name: {name}\n" not in base] == []


@pytest.fixture
def repo(tmp_path):
    for name in ("functions", "knative", "gateway", "skaffold.yaml"):
        source = render.REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path


def test_a_changed_manifest_leaves_the_generated_files_out_of_date_until_written(repo):
    manifest = repo / "functions" / "llm" / "function.toml"
    manifest.write_text(manifest.read_text() + "max_scale = 7\n")
    assert functions.out_of_date(repo) == [
        "knative/base/functions/llm.yaml is out of date with the function manifests (python -m knative.functions "
        "write)"]
    functions.write(repo)
    assert functions.out_of_date(repo) == []
    assert "autoscaling.knative.dev/max-scale: '7'" in (repo / "knative/base/functions/llm.yaml").read_text()


def test_another_function_gets_its_service_artifact_and_dev_patches(repo):
    folder = repo / "functions" / "scratch"
    folder.mkdir()
    (folder / "function.toml").write_text('name = "scratch"\nport = 8199\nserver = "asgi"\n'
                                          'app = "functions.scratch.main:app"\nextra = "scratch"\nvisibility = "public"\n')
    functions.write(repo)
    assert functions.out_of_date(repo) == []
    services = render.knative_services(render.kustomize(repo / "knative" / "base"))
    assert sorted(services) == render.function_names(repo) and "scratch" in services
    scratch = services["scratch"]["spec"]["template"]["spec"]
    assert scratch["containers"][0]["image"] == "jan-scratch"
    assert "keys" not in {volume["name"] for volume in scratch["volumes"]}, "only the manifest's keys are mounted"
    config = skaffold.load(repo / "skaffold.yaml")
    dev = {a["image"]: a for a in skaffold.artifacts(skaffold.resolve(config, [], "dev"))}
    assert dev["jan-scratch"]["docker"] == {"dockerfile": "Dockerfile", "target": "function-dev",
                                            "buildArgs": {"FUNCTION": "scratch", "EXTRAS": "scratch,asgi"}}
    assert {"src": "functions/scratch/**/*.py", "dest": "."} in dev["jan-scratch"]["sync"]["manual"]
    assert all(dev[f"jan-{name}"]["docker"]["target"] == "function-dev" for name in render.function_names(repo))


def test_a_service_file_without_a_manifest_is_reported(repo):
    (repo / "knative/base/functions/media.yaml").write_text("kind: Service\n")
    assert "knative/base/functions/media.yaml belongs to no function manifest" in functions.out_of_date(repo)[-1]


@pytest.mark.parametrize("text, message", [
    ('port = 8080\nserver = "wsgi"\napp = "functions.llm.main:app"\nextra = "llm"\nvisibility = "public"\n',
     "missing name"),
    ('name = "llm"\nport = 8080\nserver = "wsgi"\napp = "functions.llm.main:app"\nextra = "llm"\n'
     'visibility = "public"\nmax_sacle = 3\n', "unknown keys max_sacle"),
    ('name = "other"\nport = 8080\nserver = "wsgi"\napp = "functions.other.main:app"\nextra = "llm"\n'
     'visibility = "public"\n', "must be the folder's name"),
    ('name = "llm"\nport = "8080"\nserver = "wsgi"\napp = "functions.llm.main:app"\nextra = "llm"\n'
     'visibility = "public"\n', "port must be an integer"),
    ('name = "llm"\nport = 8080\nserver = "rsgi"\napp = "functions.llm.main:app"\nextra = "llm"\n'
     'visibility = "public"\n', "server must be one of wsgi, asgi"),
    ('name = "llm"\nport = 8080\nserver = "wsgi"\napp = "functions.mcp.main:app"\nextra = "llm"\n'
     'visibility = "public"\n', "app must be functions.llm."),
    ('name = "llm"\nport = 8080\nserver = "wsgi"\napp = "functions.llm.main:app"\nextra = "llm"\n'
     'visibility = "private"\n', "visibility must be one of public, internal"),
    ('name = "llm"\nport = 8080\nserver = "wsgi"\napp = "functions.llm.main:app"\nextra = "llm"\n'
     'visibility = "public"\nkeys = ["root-password"]\n', "keys ['root-password'] unknown"),
    ('name = "llm"\nport = 8080\nserver = "wsgi"\napp = "functions.llm.main:app"\nextra = "llm"\n'
     'visibility = "public"\nstreaming_paths = [1]\n', "streaming_paths must be a list of strings"),
    ('name = "llm"\nport = 8080\nserver = "wsgi"\napp = "functions.llm.main:app"\nextra = "llm"\n'
     'visibility = "public"\nstreaming_paths = ["v1/x"]\n', "each starting with /"),
])
def test_a_wrong_manifest_is_refused_naming_the_problem(tmp_path, text, message):
    path = tmp_path / "functions" / "llm" / "function.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(function_manifest.ManifestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        function_manifest.load(path)
