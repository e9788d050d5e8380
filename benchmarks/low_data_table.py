"""The low-data benchmark's printed results: one table over the regimes (arms, gains with CIs, verdicts, generator
metrics, minutes), then each regime's details against its targets."""

from __future__ import annotations

from typing import Any

from low_data_regimes import Regime, targets


def _fmt(interval: dict | None, percent: bool = False) -> str:
    if interval is None:
        return "n/a"
    mean, high = interval["mean"], interval["high"]
    half = f" ± {100 * (high - mean):.2f}" if high is not None else ""
    return f"{100 * mean:.2f}%{half}" if percent else f"{100 * mean:+.2f}{half} pts"


def target_lines(result: dict[str, Any], regime: Regime) -> list[str]:
    """Each of the regime's targets with its measured figure and MET / NOT MET."""
    figures = {"gain_test": result["gain_test"], "gain_rare": (result.get("tail") or {}).get("gain_rare_recall_test")}
    lines = []
    for label, key, threshold, rule in targets(regime):
        gain = figures[key]
        if gain is None or gain["low"] is None:
            lines.append(f"{label}: {_fmt(gain)}  NOT MEASURED")
            continue
        if rule == "above":
            ok, wanted = gain["mean"] >= threshold and gain["low"] > 0, f"≥ {100 * threshold:+.1f} pts, CI above zero"
        else:
            ok, wanted = gain["high"] >= 0, "not worse: CI reaches zero or above"
        lines.append(f"{label}: {_fmt(gain)}  {'MET' if ok else 'NOT MET'} (target {wanted})")
    return lines


def _generator_cell(generator: dict[str, Any]) -> str:
    """Precision and recall as shares of their real floor (targets 0.80 and 0.75), and the CAS ratio (0.85)."""
    names = {"precision_of_floor": "P/floor", "recall_of_floor": "R/floor", "cas_ratio": "CAS ratio"}
    parts = [f"{label} {generator[key]:.2f}" for key, label in names.items() if key in generator]
    return ", ".join(parts) or "n/a"


def print_table(results: list[dict[str, Any]], regimes: dict[str, Regime], minutes: dict[str, float]) -> None:
    """One table over the regimes (arms, gains with CIs, verdicts, generator metrics, minutes), then the details."""
    print(
        "\n| regime | metric | (a) real | (b) + classic | (c) + synthetic | gain (c) − (b) test | rare recall gain | "
        "generator | verdict | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        arms = {key: _fmt(arm["test"], True) for key, arm in r["arms"].items()}
        rare = (r.get("tail") or {}).get("gain_rare_recall_test")
        print(
            f"| {r['regime']} | {r['metric']} | {arms.get('a', 'n/a')} | {arms.get('b', 'n/a')} "
            f"| {arms.get('c', 'n/a')} "
            f"| {_fmt(r['gain_test'])} | {_fmt(rare) if rare else '—'} | {_generator_cell(r['generator'])} "
            f"| {r['verdict'].split(':')[0]} | {minutes[r['regime']]:.1f} |"
        )
    for r in results:
        regime = regimes[r["regime"]]
        print(f"\n## {r['regime']} ({regime.kind}; images per class {list(regime.counts)}; test: {r['test_source']})")
        print(f"sizes: {r['sizes']}; scored by {r['metric']}")
        for key, arm in r["arms"].items():
            print(f"({key}) {arm['name']}: test {_fmt(arm['test'], True)}, val {_fmt(arm['val'], True)}")
        print(f"gain (c) − (b) on val:  {_fmt(r['gain_val'])}")
        for line in target_lines(r, regime):
            print(line)
        if r.get("baseline"):
            b = r["baseline"]
            print(
                f"baseline: classic share {b['classic_share']:g}, (b) − (a) on val {_fmt(b['gap_b_minus_a_val'])}, "
                f"{'sound' if b['sound'] else 'NOT sound'}"
            )
        cas = r["cas"]
        if cas:
            print(f"CAS: {100 * cas['cas']:.2f}% vs {100 * cas['cas_real_accuracy']:.2f}% real at n={cas['cas_n']}")
        syn = r["synthetic"]
        print(f"synthetic: {syn.get('accepted', 0)} accepted of {syn.get('generated', 0)} generated")
        print(f"verdict: {r['verdict']}")
