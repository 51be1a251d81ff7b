"""Sections of the results page for the stream benchmarks: throughput, health, freshness."""

from __future__ import annotations

from typing import Any

from bench import markdown as md
from bench.proc_sampler import MEASURING
from bench.targets import THROUGHPUT_MIN
from bench.throughput import APPLIED_SHARE, BACKLOG_GROWTH_SHARE

#: Processes that are not the replicator in a stream benchmark's CPU table.
OTHERS = ("simulator", "redis-server", "naive baseline", MEASURING)


def replicator_cpu(cpu_percent: dict[str, float]) -> float:
    """Return the percent of one core used by the replicator's processes together."""
    return sum(share for name, share in cpu_percent.items() if name not in OTHERS)


def _step_rows(steps: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for step in steps:
        rows.append(
            [
                md.rate(step["offered"]),
                md.rate(step["applied_rate"]),
                md.pct(100 * step["applied_rate"] / step["offered"]),
                md.rate(step["backlog_growth_per_s"]),
                md.rate(step["max_backlog"]),
                md.seconds(step["lag_s"]),
                "yes" if step["sustained"] else "no",
                md.pct(step["machine_busy_percent"]),
                f"{step['load']:.2f}",
            ]
        )
    return rows


def _comparison_rows(result: dict[str, Any]) -> list[list[str]]:
    best = next(
        (
            s
            for s in result["steps"]
            if s["sustained"] and s["offered"] == result["highest_sustained"]
        ),
        None,
    )
    full = result["full_speed"]
    naive = result["naive"]
    ceiling = result["ceiling"]["sets_per_s"]
    rows = []
    for label, entry in (("replicator, highest sustained", best), ("replicator, full speed", full)):
        if entry is None:
            continue
        rows.append(
            [
                label,
                md.rate(entry["applied_rate"]),
                md.rate(entry["key_writes_per_s"]),
                md.ratio(entry["applied_rate"], naive["applied_rate"]),
                md.ratio(entry["key_writes_per_s"], ceiling),
            ]
        )
    rows.append(
        ["naive baseline, full speed", md.rate(naive["applied_rate"]),
         md.rate(naive["key_writes_per_s"]), "1.00x", md.ratio(naive["key_writes_per_s"], ceiling)]
    )  # fmt: skip
    rows.append(["redis-benchmark SET, the ceiling", "", md.rate(ceiling), "", "1.00x"])
    return rows


def throughput_bound(result: dict[str, Any]) -> str:
    """Explain in one paragraph, from the CPU samples, what limits the full-speed rate."""
    full = result["full_speed"]
    cpu = full["cpu_percent"]
    own = replicator_cpu(cpu)
    per_change_us = own / 100 * 1e6 / full["applied_rate"]
    busiest = max((name for name in cpu if name not in OTHERS), key=lambda name: cpu[name])
    needed = THROUGHPUT_MIN * per_change_us / 1e6
    text = (
        f"At full speed the machine's CPUs were {full['machine_busy_percent']:.0f} % busy "
        f"(every process on the machine counts). The replicator's processes used "
        f"{own:.0f} % of one core together, {per_change_us:,.0f} µs of CPU per change; the "
        f"busiest was `{busiest}` at {cpu[busiest]:.0f} %. At that cost, "
        f"{THROUGHPUT_MIN:,.0f} changes/s would need {needed:.1f} cores for the replicator "
        f"alone. redis-server used {cpu.get('redis-server', 0):.0f} % of a core and takes "
        f"{result['ceiling']['sets_per_s']:,.0f} pipelined SETs/s, so Redis is not the limit."
    )
    if full["machine_busy_percent"] >= 90:
        text += " The rate is bound by CPU: the CPU each change costs in the replicator."
    else:
        text += (
            " The machine had idle CPU, so part of the limit is waiting: see the profiles "
            "for where the busiest process waits."
        )
    return text


def throughput_section(result: dict[str, Any]) -> list[str]:
    full = result["full_speed"]
    fractions = ", ".join(f"{share:g}" for share in result["fractions"])
    lines = ["## 1. Stream throughput", ""]
    lines += [
        f"Replicator settings: {md.env_text(result['env'])}. Every other setting is the "
        "default. Each change is a company `full` message of three keys; the record "
        f"stored in Redis is {result['record_bytes']:,} bytes. Each change writes four "
        "keys (the record and three lookups), so key writes per second are four times "
        "the applied rate.",
        "",
        "**Sustained** means: the simulator offered a rate for the step window, and "
        "(1) the replicator applied the whole burst at no less than "
        f"{APPLIED_SHARE * 100:.0f} % of the offered rate, counted from the first "
        "scheduled send to the moment `/status` -> `details.stream.cursor` reached the "
        "burst's last stream id, and (2) over the second half of the window the backlog "
        "(messages scheduled by then minus messages applied, from the cursor polled "
        "every 0.1 s) grew by less than "
        f"{BACKLOG_GROWTH_SHARE * 100:.0f} % of the offered rate per second "
        f"(least-squares slope). The step window was {result['step_s']:g} s. The offered "
        f"rates step up through fractions {fractions} of the full-speed rate, then 15 % "
        "more each step, and stop at the first rate not sustained. One more step then "
        "tries the middle between the last sustained rate and that one. The bursts cycle "
        "through 1,000 companies.",
        "",
    ]
    lines += md.table(
        ["offered /s", "applied /s", "of offered", "backlog growth /s", "max backlog",
         "lag at end (s)", "sustained", "machine CPU busy", "load avg"],
        _step_rows(result["steps"]),
    )  # fmt: skip
    lines += [
        f"**Highest sustained rate: {md.rate(result['highest_sustained'])} changes/s.** "
        f"At full speed (a burst of {full['count']:,} published as fast as the replicator "
        f"reads) it applied {md.rate(full['applied_rate'])} changes/s "
        f"({md.rate(full['key_writes_per_s'])} key writes/s).",
        "",
        "### Compared with the ceiling and a naive client",
        "",
    ]
    lines += md.table(
        ["", "changes /s", "key writes /s", "vs naive (changes)", "vs ceiling (key writes)"],
        _comparison_rows(result),
    )
    lines += [
        f"The ceiling is `{result['ceiling']['command']}` against the same redis-server "
        "(one key, so every SET replaces the same value). The naive baseline is "
        "`bench/naive_baseline.py`, one process with a websocket-client `WebSocketApp`. "
        "Its `on_message` writes each change with individual redis-py `SET` commands "
        "(the record, then each lookup). It runs against its own redis-server and "
        "simulator, and its applied rate comes from the SET call count in Redis "
        f"`INFO commandstats`, for a burst of {result['naive']['count']:,} changes "
        "published at full speed.",
        "",
        "### CPU per process at full speed",
        "",
    ]
    lines += md.table(
        ["process", "CPU (% of one core)", "CPU µs per change"],
        md.cpu_rows(full["cpu_percent"], full["applied_rate"]),
    )
    lines += [
        throughput_bound(result),
        "",
        "`health (child)` is the gunicorn worker; part of its CPU answers the "
        "benchmark's own reads of `/status` (10 to 20 per second) that follow the cursor. "
        "`benchmark (measuring)`, where listed, is the process that runs the benchmark: "
        "it samples /proc and sends those reads.",
        "",
    ]
    return lines


def _health_rows(paths: dict[str, Any]) -> list[list[str]]:
    rows = []
    for path, values in paths.items():
        statuses = ", ".join(f"{code}: {count}" for code, count in values["statuses"].items())
        if "404" in values["statuses"]:
            rows.append([path, str(values["requests"]), statuses, "not available", "", ""])
            continue
        rows.append(
            [path, str(values["requests"]), statuses, md.ms(values["p50_ms"]),
             md.ms(values["p99_ms"]), md.ms(values["max_ms"])]
        )  # fmt: skip
    return rows


def health_section(result: dict[str, Any]) -> list[str]:
    lines = ["## 4. Health under load", ""]
    health = result.get("health")
    if not health:
        return [*lines, "Not measured: no offered rate was sustained.", ""]

    burst = health["burst"]
    lines += [
        "A separate process sent one GET every 20 ms over one keep-alive connection, "
        "taking `/health`, `/ready` and `/metrics` in turn. Meanwhile the replicator "
        f"applied a burst offered at {md.rate(health['rate'])} changes/s, the highest "
        f"sustained rate (applied {md.rate(burst['applied_rate'])} /s in this run, machine "
        f"CPU {md.pct(burst['machine_busy_percent'])} busy, load average "
        f"{burst['load']:.2f}). Latency is the client's wall time for the whole request.",
        "",
    ]
    lines += md.table(
        ["path", "requests", "status: count", "p50 ms", "p99 ms", "max ms"],
        _health_rows(health["paths"]),
    )
    if any("404" in values["statuses"] for values in health["paths"].values()):
        lines += ["`/metrics` returns 404 on this version: it is not available.", ""]

    worker = burst["cpu_percent"].get("health (child)", 0.0)
    text = f"The gunicorn worker that serves these paths used {worker:.0f} % of a core."
    if burst["machine_busy_percent"] >= 90:
        text += (
            f" The machine's CPUs were {burst['machine_busy_percent']:.0f} % busy, so a "
            "request can wait for a CPU behind the ingest and the workers; with the "
            "worker this lightly loaded, that wait is the likely cause of the slow tail."
        )
    return [*lines, text, ""]


def _freshness_rows(config: dict[str, Any]) -> list[list[str]]:
    rows = []
    for entry in config["rates"]:
        burst = entry["burst"]
        rows.append(
            [
                config["name"],
                md.rate(entry["rate"]),
                md.ms(entry["p50_ms"]),
                md.ms(entry["p99_ms"]),
                md.ms(entry["max_ms"]),
                f"{entry['events']:,} / {entry['sent']:,} / {entry['early']:,}",
                md.rate(burst["applied_rate"]),
                md.pct(burst["machine_busy_percent"]),
                f"{burst['load']:.2f}",
            ]
        )
    return rows


def freshness_section(result: dict[str, Any]) -> list[str]:
    configs = result["configs"]
    lines = ["## 2. Freshness", ""]
    lines += [
        "Delay from the simulator writing a change to its WebSocket (`time.time_ns()`, "
        "kept in `Service.send_times`) to the company record key changing in Redis. "
        "The benchmark's redis-server runs with `notify-keyspace-events K$`; a separate "
        "process subscribes to `__keyspace@0__:schematic:company:<version>:comp_*` "
        "(record keys of the burst companies; lookup keys do not match) and stamps each "
        "`set` event with `time.time_ns()` when it reads it. Each event is matched to the "
        "latest send of the same company not later than the event. Each burst sends "
        "every company once, so the match is unambiguous. The table counts the matched "
        "events, the messages sent, and the *early* events: events read before their "
        "company's send stamp, which have no delay to report (see the error below).",
        "",
        "Error of the method: both stamps use the same clock on the same machine, so "
        "there is no clock offset. A send is stamped right after the simulator's "
        "transport write of the batch that holds it, so the delay includes the kernel "
        "and the replicator's read but not the simulator's own queueing. When the "
        "machine is busy, the simulator's thread can lose its CPU between the write and "
        "the stamp: the stamp is then late, the delay too short, and in the extreme the "
        "event comes before the stamp (an early event). An event is "
        "stamped when the listener reads it, which adds Redis pub/sub delivery and the "
        "listener's scheduling. The calibration below measures that share: the benchmark "
        "process SETs keys (one every 5 ms) and times their events the same way, while "
        "the replicator is idle. Under load the listener competes for the same two CPUs, "
        "so its share can grow.",
        "",
    ]
    calibration = [
        [c["name"], str(c["calibration"]["events"]), md.ms(c["calibration"]["p50_ms"]),
         md.ms(c["calibration"]["p99_ms"]), md.ms(c["calibration"]["max_ms"])]
        for c in configs
    ]  # fmt: skip
    lines += ["Calibration (listener delay, idle replicator):", ""]
    lines += md.table(["run", "probes", "p50 ms", "p99 ms", "max ms"], calibration)
    lines += ["Settings: " + "; ".join(
        f"{c['name']}: {md.env_text(c['env'])}" for c in configs
    ) + ". A burst lasts the window given under How to run.", ""]  # fmt: skip
    rows = [row for config in configs for row in _freshness_rows(config)]
    lines += md.table(
        ["settings", "rate /s", "p50 ms", "p99 ms", "max ms", "matched / sent / early",
         "applied /s", "machine CPU busy", "load avg"],
        rows,
    )  # fmt: skip
    lines += [
        "When the applied rate is below the offered rate, a backlog builds during the "
        "burst and the delay grows with it: those rows measure queueing, not the write "
        "path.",
        "",
    ]
    return lines
