"""The Simulator helper and the blocking run_simulator entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tollhouse.simulator import FaultSpecError, Simulator, SimulatorSettings
from tollhouse.testing import free_port

from .helpers import long_text, post

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_bills_go_to_a_temporary_file_removed_on_exit() -> None:
    with Simulator() as sim:
        path = sim.bill_path
        assert sim.url.startswith("http://127.0.0.1:")
        post(f"{sim.url}/v1/chat/completions", CHAT)
        assert len(sim.bills()) == 1
    assert not path.exists()


def test_a_given_bill_path_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "bills.jsonl"
    with Simulator(SimulatorSettings(bill_path=path)) as sim:
        post(f"{sim.url}/v1/chat/completions", CHAT)
    assert len(path.read_text().splitlines()) == 1


def test_program_rejects_bad_specs_in_the_calling_thread(sim: Simulator) -> None:
    with pytest.raises(FaultSpecError):
        sim.program("rate_limit,cut=soon")


def test_reset_forgets_faults_cache_and_bills(sim: Simulator) -> None:
    long_chat = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": long_text(1200)},
            {"role": "user", "content": "hi"},
        ],
    }
    url = f"{sim.url}/v1/chat/completions"
    post(url, long_chat)
    sim.program("server_error")
    sim.reset()
    raw = post(url, long_chat)
    assert raw.status == 200
    assert raw.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert len(sim.bills()) == 1


def test_run_simulator_serves_until_stopped(tmp_path: Path) -> None:
    port = free_port()
    bills = str(tmp_path / "b")
    script = (
        "from pathlib import Path\n"
        "from tollhouse.simulator import SimulatorSettings, run_simulator\n"
        f"settings = SimulatorSettings(bill_path=Path({bills!r}))\n"
        f"run_simulator('127.0.0.1', {port}, settings)\n"
    )
    proc = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # printed once the socket listens
        assert f"127.0.0.1:{port}" in banner
        assert post(f"http://127.0.0.1:{port}/v1/chat/completions", CHAT).status == 200
        assert (tmp_path / "b").read_text().count("\n") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
