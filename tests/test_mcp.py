"""``python app.py --mcp``: the three MCP tools, called with the real ``mcp`` client over streamable HTTP."""

from __future__ import annotations

import ast
import asyncio
import base64
from contextlib import asynccontextmanager

import pytest

from conftest import APP_ZOO_TEMPERATURE, APP_ZOO_THRESHOLD, PHOTOS, needs_photos
from fer.labels import EMOTIONS

pytest.importorskip("mcp", reason="mcp not installed (pip install -r requirements.txt brings it with gradio[mcp])")

TOOLS = {"classify_faces", "compare_models", "list_models"}


@pytest.fixture(scope="module")
def mcp_url(app_server) -> str:
    """The MCP endpoint of ``python app.py --mcp`` serving the test zoo (alpha, beta and their ensemble)."""
    return app_server + "gradio_api/mcp/"


@asynccontextmanager
async def _session(url: str):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(url) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def _call(session, tool: str, arguments: dict):
    """The tool's answer as Python data (Gradio sends a tool's return value as its text)."""
    result = await session.call_tool(tool, arguments)
    assert not result.isError, result.content
    return ast.literal_eval(result.content[0].text)


def _data_url(path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


def test_exactly_the_three_tools_with_descriptions_an_agent_can_act_on(mcp_url):
    async def check():
        async with _session(mcp_url) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            models = await _call(session, "list_models", {})
        return tools, models

    tools, models = asyncio.run(check())
    assert set(tools) == TOOLS, "the UI's handlers stay private"
    classify = tools["classify_faces"]
    assert "list_models" in classify.inputSchema["properties"]["model"]["description"]
    assert "base64" in classify.inputSchema["properties"]["image"]["description"]
    assert classify.inputSchema["required"] == ["image"]
    assert all("Returns:" in t.description for t in tools.values())
    by_name = {m["name"]: m for m in models}
    assert list(by_name) == ["alpha", "beta", "ensemble"]
    assert by_name["alpha"]["temperature"] == APP_ZOO_TEMPERATURE
    assert by_name["alpha"]["uncertain_threshold"] == APP_ZOO_THRESHOLD
    assert by_name["beta"]["temperature"] is None and by_name["beta"]["architecture"] == "custom_cnn"
    assert by_name["ensemble"]["members"] == ["alpha", "beta"]
    assert by_name["ensemble"]["uncertain_threshold"] == APP_ZOO_THRESHOLD
    assert all(0 <= m["test_accuracy"] <= 1 for m in models if m["name"] != "ensemble")


@needs_photos
def test_classify_and_compare_score_every_face_of_a_photo(mcp_url):
    photo = _data_url(PHOTOS / "couple.jpg")  # a local photo travels as a data URL (Gradio refuses loopback URLs)

    async def check():
        async with _session(mcp_url) as session:
            alpha = await _call(session, "classify_faces", {"image": photo, "model": "alpha"})
            beta = await _call(session, "classify_faces", {"image": photo, "model": "beta", "detector": "haar"})
            compared = await _call(session, "compare_models", {"image": photo})
            unknown = await session.call_tool("classify_faces", {"image": photo, "model": "gamma"})
        return alpha, beta, compared, unknown

    alpha, beta, compared, unknown = asyncio.run(check())
    assert len(alpha) == len(compared) == 2 and len(beta) == 2
    for face in alpha:
        assert list(face["scores"]) == list(EMOTIONS)
        assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert all(0 <= p <= 1 for p in face["scores"].values())
        assert face["uncertain"] == (max(face["scores"].values()) < APP_ZOO_THRESHOLD)
        assert face["detector"] == "mtcnn" and face["confidence"] > 0.9
    assert all(face["detector"] == "haar" and face["uncertain"] is None for face in beta), "beta has no threshold"
    for got, want in zip(compared, alpha):
        assert set(got["scores"]) == {"alpha", "beta", "ensemble"} and got["box"] == want["box"]
        for emotion, p in want["scores"].items():
            assert got["scores"]["alpha"][emotion] == pytest.approx(p, abs=1e-5), "the chosen model scored it"
        assert got["scores"]["beta"] != got["scores"]["alpha"]
    assert unknown.isError and "choose from alpha, beta, ensemble" in unknown.content[0].text
