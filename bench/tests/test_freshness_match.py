from __future__ import annotations

from bench.freshness import burst_delays, calibration_delays
from bench.proc_sampler import Watch
from bench.sim_process import Burst
from bench.throughput import BurstRun

MS = 1_000_000
KEY = "schematic:company:v1:"


def _run(company_ids: list[str], started_ns: int) -> BurstRun:
    stream_ids = [f"{n}-0" for n in range(len(company_ids))]
    burst = Burst(stream_ids, company_ids, started_ns, started_ns)
    return BurstRun(burst, [], started_ns / 1e9 + 1.0, Watch({}), 0.0)


def test_burst_delays_match_latest_send() -> None:
    run = _run(["comp_a", "comp_b", "comp_a"], 100 * MS)
    sends = {"0-0": 100 * MS, "1-0": 101 * MS, "2-0": 110 * MS}
    events = [(KEY + "comp_a", 104 * MS), (KEY + "comp_b", 103 * MS), (KEY + "comp_a", 113 * MS)]
    delays, early = burst_delays(run, sends, events, until_ns=10_000 * MS)
    assert sorted(delays) == [2.0, 3.0, 4.0]
    assert early == 0


def test_burst_delays_count_early_and_skip_others() -> None:
    run = _run(["comp_a"], 100 * MS)
    sends = {"0-0": 105 * MS}
    events = [
        (KEY + "comp_a", 104 * MS),  # read before the send stamp
        (KEY + "comp_z", 106 * MS),  # a company this burst did not send
        (KEY + "comp_a", 99 * MS),  # before the burst started
        (KEY + "comp_a", 500 * MS),  # after the window
    ]
    delays, early = burst_delays(run, sends, events, until_ns=400 * MS)
    assert delays == []
    assert early == 1


def test_calibration_takes_first_event() -> None:
    sent = {"k1": 10 * MS, "k2": 20 * MS}
    events = [("k1", 11 * MS), ("k1", 15 * MS), ("k2", 22 * MS), ("other", 1)]
    assert sorted(calibration_delays(sent, events)) == [1.0, 2.0]
