"""Who may call the API (the key) and which files a request may make the server read (the allow-list)."""

from __future__ import annotations

import shutil

import openai
import pytest
import requests
from api_server import en_clips, make_workspace, start_server, tts_params

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def env(tmp_path_factory, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    workspace = tmp_path_factory.mktemp("ws_security")
    allowed = tmp_path_factory.mktemp("allowed_elsewhere")
    outside = tmp_path_factory.mktemp("not_allowed")
    clips = make_workspace(workspace, en_clips(voices), 1)
    for folder in (allowed, outside):
        shutil.copyfile(clips[0].path, folder / "ref.wav")
    server = start_server(workspace, tiny_s1_ckpt, tiny_s2_pth, golden, api_key=KEY, allow_dirs=(allowed,))
    yield server, clips[0], workspace, allowed, outside
    server.stop()


def _auth(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_api_key_is_required_on_every_route(env):
    server, clip, *_ = env
    for path in ("/tts", "/set_refer_audio", "/control", "/v1/models", "/v1/audio/voices"):
        r = requests.get(server.url + path, params=tts_params(clip), timeout=30)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in requests.get(server.url + "/tts", timeout=30).json()["message"]
    wrong = requests.get(server.url + "/tts", params=tts_params(clip), headers=_auth("guess"), timeout=30)
    assert wrong.status_code == 401 and wrong.json() == {"message": "The API key is not valid."}
    assert (
        requests.post(server.url + "/v1/audio/speech", json={"input": "Hi there.", "voice": "x"}).json()["error"][
            "code"
        ]
        == "invalid_api_key"
    )


def test_the_right_key_works_as_bearer_or_header(env):
    server, clip, *_ = env
    r = requests.get(server.url + "/tts", params=tts_params(clip), headers=_auth(), timeout=120)
    assert r.status_code == 200 and r.content[:4] == b"RIFF"
    r = requests.get(server.url + "/tts", params=tts_params(clip), headers={"X-API-Key": KEY}, timeout=120)
    assert r.status_code == 200


def test_openai_sdk_with_wrong_and_right_key(env):
    server, *_ = env
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="guess", max_retries=0).models.list()
    ids = [m.id for m in openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0).models.list()]
    assert "tts-1" in ids


def test_paths_outside_the_allowed_folders_are_403(env):
    server, clip, workspace, allowed, outside = env
    link = workspace / "refs" / "sneaky.wav"
    link.symlink_to(outside / "ref.wav")
    refused = [
        str(outside / "ref.wav"),  # absolute, elsewhere
        "../" + outside.name + "/ref.wav",  # relative, climbing out of the workspace
        str(workspace / ".." / outside.name / "ref.wav"),
        "refs/sneaky.wav",  # a symbolic link inside the workspace to a file outside
        "/etc/passwd",
    ]
    for path in refused:
        r = requests.get(server.url + "/tts", params=tts_params(clip, ref_audio_path=path), headers=_auth())
        assert r.status_code == 403, path
        message = r.json()["message"]
        assert message.startswith("ref_audio_path") and "--allow-dir" in message
    aux = requests.post(
        server.url + "/tts", json=tts_params(clip, aux_ref_audio_paths=[str(outside / "ref.wav")]), headers=_auth()
    )
    assert aux.status_code == 403 and aux.json()["message"].startswith("aux_ref_audio_paths")
    for route, name in (("/set_gpt_weights", "weights_path"), ("/set_sovits_weights", "weights_path")):
        r = requests.get(server.url + route, params={name: "/etc/passwd"}, headers=_auth())
        assert r.status_code == 403
    r = requests.get(server.url + "/set_refer_audio", params={"refer_audio_path": "/etc/hostname"}, headers=_auth())
    assert r.status_code == 403


def test_allowed_folder_and_missing_files(env):
    server, clip, _, allowed, _ = env
    ok = requests.get(
        server.url + "/tts", params=tts_params(clip, ref_audio_path=str(allowed / "ref.wav")), headers=_auth()
    )
    assert ok.status_code == 200, ok.text
    missing = requests.get(
        server.url + "/tts", params=tts_params(clip, ref_audio_path="refs/none.wav"), headers=_auth()
    )
    assert missing.status_code == 400 and missing.json() == {"message": "ref_audio_path: no such file: refs/none.wav"}


def test_openapi_schema_describes_what_is_served(env):
    server, *_ = env
    schema = requests.get(server.url + "/openapi.json", timeout=30).json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/tts"])
    assert "post" in paths["/v1/audio/speech"]
    for route in ("/set_gpt_weights", "/set_sovits_weights", "/set_refer_audio", "/control", "/v1/models"):
        assert "get" in paths[route]
    query = {p["name"] for p in paths["/tts"]["get"]["parameters"] if p["in"] == "query"}
    assert {"text", "text_lang", "ref_audio_path", "prompt_lang", "media_type", "streaming_mode"} <= query
    assert any(s.get("HTTPBearer") is not None for s in paths["/tts"]["get"]["security"])
    assert "audio/wav" in paths["/tts"]["get"]["responses"]["200"]["content"]


def test_schemathesis_finds_no_server_errors(env, tmp_path):
    """Property-based calls against the served schema: no 5xx, and every answer conforms to the schema."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis import checks as st_checks

    server, *_ = env
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    schema = schema.exclude(path="/control").exclude(path="/v1/audio/speech")
    # api_v2 declares its "required" parameters optional and answers 400 (upstream's contract), so the
    # positive/negative-data heuristics do not apply; everything about the responses is checked.
    conformance = [
        st_checks.not_a_server_error,
        st_checks.status_code_conformance,
        st_checks.content_type_conformance,
        st_checks.response_schema_conformance,
    ]
    failures, calls = [], []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def check(case):
            calls.append(case.path)
            try:
                case.call_and_validate(headers=_auth(), timeout=60, checks=conformance)
            except Exception as exc:  # a failed check: collect them all, report at the end
                failures.append((case.method, case.path, str(exc)[:300]))

        check()
    assert failures == []
    assert len(set(calls)) >= 8  # every operation was exercised


def test_control_exit_stops_the_server_gracefully(tmp_path, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    make_workspace(tmp_path, en_clips(voices), 1)
    server = start_server(tmp_path, tiny_s1_ckpt, tiny_s2_pth, golden)
    refused = requests.get(server.url + "/control", params={"command": "exit"}, timeout=30)
    assert refused.status_code == 401 and "needs the API key" in refused.json()["message"]
    r = requests.get(server.url + "/control", params={"command": "exit"}, headers=server.key_headers, timeout=30)
    assert r.status_code == 200
    server.thread.join(20)
    assert not server.thread.is_alive()
