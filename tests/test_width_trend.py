"""benchmarks/width_trend.py: Li et al.'s width sweep of the variance shift, on a tiny grid."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).parents[1]


@pytest.fixture(scope="module")
def width_trend():
    spec = importlib.util.spec_from_file_location("width_trend", ROOT / "benchmarks" / "width_trend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(shift, widths=(8, 16, 32), seeds=(0, 1, 2)):
    return {w: [{"placement": p, "seed": s, "variance_shift_max": f(w, s), "test_accuracy": 0.9}
                for p, f in shift.items() for s in seeds] for w in widths}


def test_the_direction_follows_the_per_seed_slopes(width_trend):
    rows = _rows({"halves": lambda w, s: (1 + s / 10) * 64 / w,
                  "grows": lambda w, s: (1 + s / 10) * w,
                  "flat": lambda w, s: 2.0 + (s - 1) * (-1) ** (w // 8)})
    slopes = width_trend.doubling_slopes(rows)
    assert slopes["halves"][0] == pytest.approx(-1.0) and slopes["grows"][0] == pytest.approx(1.0)
    assert [width_trend.direction(slopes[p]) for p in ("halves", "grows", "flat")] == [
        "shrinks as width grows", "grows with width", "no direction separated from flat"]


def test_the_wide_resnet_order_is_compared_with_dropout_before_bn_paired_by_seed(width_trend):
    rows = _rows({"drop_before_bn": lambda w, s: 2.0 + s, "drop_before_weight": lambda w, s: (2.0 + s) / 4})
    ratios = width_trend.paired_ratio(rows, "drop_before_weight", "drop_before_bn")
    assert ratios == {w: pytest.approx((0.25, 0.25, 0.25)) for w in (8, 16, 32)}
    lines = width_trend.summary_lines(rows)
    assert "filters 16: drop_before_weight's shift is x0.25 of drop_before_bn's (95% CI x0.25 to x0.25" in lines[-2]


def test_a_tiny_sweep_trains_one_study_per_width_and_writes_the_figure_and_table(width_trend, tmp_path):
    rows = width_trend.run(tmp_path / "sweep", (4, 8), workers=1, verbose=0,
                           placements=("drop_before_bn", "drop_before_weight"), seeds=(0,), epochs=1)
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["filters4", "filters8"]
    for width, width_rows in rows.items():
        assert sorted((r["placement"], r["seed"], r["epochs_run"]) for r in width_rows) == [
            ("drop_before_bn", 0, 1), ("drop_before_weight", 0, 1)]
        assert {r["parameters"] for r in width_rows} != {r["parameters"] for r in rows[4 if width == 8 else 8]}
        assert all(r["variance_shift_max"] >= 1 for r in width_rows)
    table = width_trend.markdown(rows).splitlines()
    assert table[0] == "| filters | drop_before_bn | drop_before_weight |"
    assert [line.split(" | ")[0] for line in table[2:]] == ["| 4", "| 8"]
    assert len(width_trend.summary_lines(rows)) == 4  # two trends, two paired ratios (one seed: no intervals)
    path = width_trend.figure(rows, tmp_path / "width_trend.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
