"""ARCHITECTURE.md's recipes, followed to the letter on a copy of the package.

Each test copies ``tollhouse/`` aside, makes exactly the edits a recipe
names, checks that the files it touched are the files the recipe names (read
from ARCHITECTURE.md itself), and then serves a real request through the
copy: a gateway over loopback to the simulator, its ledger row read back.
"""

from __future__ import annotations

import filecmp
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import tollhouse

PACKAGE = Path(tollhouse.__file__).parent
ARCHITECTURE = PACKAGE.parent / "ARCHITECTURE.md"

PROVIDER_MODULE = '''
"""Acme AI: OpenAI-compatible, bearer keys."""

from __future__ import annotations

from tollhouse.providers.base import Provider


class AcmeProvider(Provider):
    kind = "acme"
    dialects = frozenset({DIALECTS})
    pricing_id = None
    base_includes = "/v1"
    default_base_url = "https://api.acme.test/v1"
    default_key_env = "ACME_API_KEY"
'''

DIALECT_MODULE = '''
"""Toy chat: OpenAI chat bodies on the toy's own path."""

from __future__ import annotations

from tollhouse.ingress.base import Call
from tollhouse.ingress.openai_chat import OpenAIChat


class ToyChat(OpenAIChat):
    name = "toy-chat"
    label = "Toy Chat"
    routes = ("/toy/v1/chat",)
    native_path = ""
    wire_suffixes = ("/toy/v1/chat",)
    path_prefixes = ("/toy/",)

    def upstream_path(self, call: Call, upstream_model: str) -> str:
        return "/v1/chat/completions"
'''

METER_MODULE = '''
"""Toy chat answers are OpenAI chat answers."""

from tollhouse.metering.openai_chat import OpenAIChatMeter


class ToyChatMeter(OpenAIChatMeter):
    dialect = "toy-chat"
'''

# Serves one request through the copied package, prints its ledger row.
SERVE = """
import json, sqlite3, sys, urllib.request
from pathlib import Path
from tollhouse.app import create_app
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.testing import BackgroundServer

path, model, home = sys.argv[1], sys.argv[2], Path(sys.argv[3])
with Simulator(SimulatorSettings(bill_path=home / "bill.jsonl")) as sim:
    settings = parse_settings(
        {"providers": [{"name": "acme", "kind": "acme", "base_url": sim.url + "/v1"}]}
    )
    ledger = home / "ledger.db"
    with BackgroundServer(lambda: create_app(settings, ledger_path=ledger)) as gw:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        req = urllib.request.Request(
            gw.url + path,
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Authorization": "Bearer sk-test-recipe"},
        )
        with urllib.request.urlopen(req) as answer:
            status = answer.status
    row = sqlite3.connect(ledger).execute(
        "SELECT provider, dialect, input_tokens, output_tokens FROM requests"
    ).fetchone()
print(json.dumps({"status": status, "row": row}))
"""


def recipe(title: str) -> list[str]:
    """The file patterns a recipe's numbered steps name (``<kind>`` is a wildcard)."""
    text = ARCHITECTURE.read_text()
    section = text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]
    steps = re.split(r"\n(?=\d+\. )", section.split("\n\n", 1)[0])
    named = [p for step in steps for p in re.findall(r"`(tollhouse/[^`]+\.py)`", step)]
    return [re.sub(r"<[^>]+>", "*", p) for p in named]


def copy(tmp: Path) -> Path:
    shutil.copytree(PACKAGE, tmp / "tollhouse", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


def changed(tree: Path) -> set[str]:
    """The files of ``tree``'s package that differ from the real one, or are new."""
    out = set()
    for path in (tree / "tollhouse").rglob("*.py"):
        rel = path.relative_to(tree)
        original = PACKAGE.parent / rel
        if not original.exists() or not filecmp.cmp(path, original, shallow=False):
            out.add(str(rel))
    return out


def add_to_table(tree: Path, module: str, anchor: str, line: str, imported: str) -> None:
    """One entry in a registry table, and its import."""
    path = tree / module
    text = path.read_text()
    assert anchor in text, f"{module} has no {anchor!r}"
    text = text.replace(anchor, anchor + line, 1)
    text = text.replace("\n\n\ndef build(", f"\n{imported}\n\n\ndef build(", 1)
    path.write_text(text)


def add_provider_kind(tree: Path, dialects: str) -> None:
    module = PROVIDER_MODULE.replace("DIALECTS", dialects)
    (tree / "tollhouse/providers/acme.py").write_text(textwrap.dedent(module).lstrip())
    add_to_table(
        tree,
        "tollhouse/providers/registry.py",
        "        OpenAICompatibleProvider,\n",
        "        AcmeProvider,\n",
        "from tollhouse.providers.acme import AcmeProvider",
    )


def serve(tree: Path, path: str, model: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SERVE, path, model, str(tree)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "TOLLHOUSE_HOME": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def assert_only_recipe_files(tree: Path, *titles: str) -> None:
    patterns = [p for title in titles for p in recipe(title)]
    touched = changed(tree)
    assert touched, "the recipe changed nothing"
    stray = {f for f in touched if not any(fnmatch.fnmatch(f, p) for p in patterns)}
    assert not stray, f"files outside the recipe: {stray}"
    unused = {p for p in patterns if not any(fnmatch.fnmatch(f, p) for f in touched)}
    assert not unused, f"recipe steps not needed: {unused}"


def test_the_recipes_name_files_that_exist() -> None:
    for title in ("Add a provider kind (OpenAI-compatible)", "Add a dialect"):
        for pattern in recipe(title):
            assert list(PACKAGE.parent.glob(pattern)), pattern


def test_a_provider_kind(tmp_path: Path) -> None:
    tree = copy(tmp_path)
    add_provider_kind(tree, '"openai-chat"')
    assert_only_recipe_files(tree, "Add a provider kind (OpenAI-compatible)")
    result = serve(tree, "/v1/chat/completions", "gpt-4o-mini")
    assert result["status"] == 200
    provider, dialect, input_tokens, output_tokens = result["row"]  # type: ignore[misc]
    assert (provider, dialect) == ("acme", "openai-chat")
    assert input_tokens > 0 and output_tokens > 0


def test_a_dialect(tmp_path: Path) -> None:
    tree = copy(tmp_path)
    add_provider_kind(tree, '"openai-chat", "toy-chat"')  # step 4: a kind that speaks it
    (tree / "tollhouse/ingress/toy.py").write_text(textwrap.dedent(DIALECT_MODULE).lstrip())
    add_to_table(
        tree,
        "tollhouse/ingress/registry.py",
        "    (OpenAIChat(), OpenAIResponses(), AnthropicMessages(), Gemini()",
        ", ToyChat()",
        "from tollhouse.ingress.toy import ToyChat",
    )
    (tree / "tollhouse/metering/toy.py").write_text(textwrap.dedent(METER_MODULE).lstrip())
    meters = tree / "tollhouse/metering/registry.py"
    text = meters.read_text().replace(
        "(OpenAIChatMeter, OpenAIResponsesMeter, AnthropicMeter, GeminiMeter)",
        "(OpenAIChatMeter, OpenAIResponsesMeter, AnthropicMeter, GeminiMeter, ToyChatMeter)",
    )
    meters.write_text(
        text.replace(
            "from tollhouse.metering.usage import Metered\n",
            "from tollhouse.metering.toy import ToyChatMeter\n"
            "from tollhouse.metering.usage import Metered\n",
        )
    )
    assert_only_recipe_files(tree, "Add a provider kind (OpenAI-compatible)", "Add a dialect")
    result = serve(tree, "/toy/v1/chat", "gpt-4o-mini")
    assert result["status"] == 200
    provider, dialect, input_tokens, output_tokens = result["row"]  # type: ignore[misc]
    assert (provider, dialect) == ("acme", "toy-chat")
    assert input_tokens > 0 and output_tokens > 0
