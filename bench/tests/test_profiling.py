from __future__ import annotations

from pathlib import Path

from bench.profiling import record_command, summarise


def test_summarise_ranks_frames(tmp_path: Path) -> None:
    raw = tmp_path / "worker.raw.txt"
    main = "main (replicator/cli.py:54)"
    apply = "apply (workers/entities.py:105)"
    raw.write_text(
        f"{main};{apply};loads (orjson.py:3) 60\n"
        f"{main};{apply};encode (replicator/records.py:9) 30\n"
        f"{main};flush (workers/base.py:7) 10\n"
        "garbage line\n",
        encoding="utf-8",
    )
    summary = summarise(raw, duration_s=10.0)
    assert summary["gil_percent"] == 10.0
    assert summary["self"][0] == ["loads (orjson.py:3)", 60.0]
    assert summary["self"][1] == ["encode (replicator/records.py:9)", 30.0]
    assert summary["total"][0] == [apply, 90.0]
    assert all(frame != main for frame, _ in summary["total"])
    assert all(not frame.startswith("loads") for frame, _ in summary["total"])


def test_record_command_samples_gil() -> None:
    command = record_command("py-spy", 42, 10.0, Path("out.txt"))
    assert command[:4] == ["py-spy", "record", "-p", "42"]
    assert "--gil" in command
    assert command[command.index("-f") + 1] == "raw"
