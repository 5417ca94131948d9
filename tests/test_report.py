"""The study report read back: the answer first, both formats complete, HParams in TensorBoard, HTML in Chromium.

One tiny real study (2 placements x 2 seeds x 2 epochs) serves every test here.
"""

import csv
import os
import pathlib
import shutil

import pytest

import kerasreg
from kerasreg.analysis import hparams, report

PLACEMENTS = ["bn_before_act", "bn_act_drop"]
SEEDS = [0, 1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("report-study")
    config = kerasreg.StudyConfig(placements=PLACEMENTS, seeds=SEEDS, epochs=2)
    report = kerasreg.run_study(config, out, workers=1, verbose=0)
    assert not report.failures
    return out, report


def _compare_rows(out):
    with open(out / "compare.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_report_states_the_answer_first_then_ranking_findings_figures_and_runs(study):
    out, report = study
    markdown = (out / "report.md").read_text()
    sections = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert sections == ["## Answer", "## Ranking", "## Findings", "## Figures", "## Per-run results"]
    answer = markdown.split("## Answer", 1)[1].split("## Ranking", 1)[0]
    best = report.summaries[0]
    assert f"a description, not a test: **{best.label}**" in answer
    items = answer.strip().splitlines()
    family = items[0]
    assert family == f"- {report.headline[0]}", "the family and its rule before any result"
    assert family.startswith("- Contrasts fixed before any run") and "mlp bn_before_act vs bn_act_drop" in family
    assert items[1:1 + len(report.answer)] == [f"- {line}" for line in report.answer]
    findings = markdown.split("## Findings", 1)[1].split("## Figures", 1)[0]
    assert findings.strip().startswith("- mlp, test accuracy, against bn_before_act: ")
    assert (out / "answer.json").exists() and str(out / "answer.json") in map(str, report.files)
    html = (out / "report.html").read_text()
    positions = [html.index(f"<h2>{name}</h2>") for name in ("Answer", "Ranking", "Findings", "Figures",
                                                                "Per-run results")]
    assert positions == sorted(positions)
    runs = [row["run"] for row in _compare_rows(out)]
    assert len(runs) == len(PLACEMENTS) * len(SEEDS)
    for run in runs:
        assert f"| {run} |" in markdown and f">{run}</td>" in html


def test_figures_are_the_per_configuration_ones_and_inline_in_the_html(study):
    out, report = study
    names = [p.name for p in report.files[2:-1]]
    assert names == ["study_test_accuracy.png", "study_gaps.png", "study_variance_shift.png",
                     "study_learning_curves.png"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(names)
    assert "src=\"http" not in html and "href=\"http" not in html, "the page is self-contained"


def _events(folder):
    import tensorflow as tf

    for path in sorted(pathlib.Path(folder).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            yield from event.summary.value


def test_hparams_sessions_hold_each_runs_grid_point_and_final_metrics(study):
    import tensorflow as tf
    from tensorboard.plugins.hparams import metadata

    out, _ = study
    root = out / hparams.HPARAMS_DIR
    (experiment,) = [v for v in _events(root) if v.tag == metadata.EXPERIMENT_TAG]
    config = metadata.parse_experiment_plugin_data(experiment.metadata.plugin_data.content)
    assert {h.name for h in config.hparam_infos} == {name for _, name, _ in hparams.HPARAMS}
    assert {m.name.tag for m in config.metric_infos} == set(hparams.METRICS)
    placements = [h for h in config.hparam_infos if h.name == "placement"][0]
    assert sorted(v.string_value for v in placements.domain_discrete.values) == sorted(PLACEMENTS)

    rows = _compare_rows(out)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(r["run"] for r in rows)
    for row in rows:
        values = list(_events(root / row["run"]))
        (start,) = [v for v in values if v.tag == metadata.SESSION_START_INFO_TAG]
        session = metadata.parse_session_start_info_plugin_data(start.metadata.plugin_data.content)
        got = session.hparams
        assert got["placement"].string_value == row["placement"]
        assert got["architecture"].string_value == "mlp"
        assert got["seed"].number_value == int(row["seed"])
        assert got["dropout_rate"].number_value == pytest.approx(float(row["dropout_rate"]))
        scalars = {v.tag: float(tf.make_ndarray(v.tensor)) for v in values if v.tag in hparams.METRICS}
        measured = {key for key in hparams.METRICS if row.get(key, "") != ""}
        assert {"test_accuracy", "clean_gap", "reported_gap", "variance_shift_max"} <= measured
        assert set(scalars) == measured, "a session logs exactly the metrics its run measured"
        for key in measured:
            assert scalars[key] == pytest.approx(float(row[key]), rel=1e-6)


def test_rewriting_hparams_replaces_the_old_sessions(tmp_path):
    row = {"run": "a", "architecture": "mlp", "placement": "none", "dropout": "none", "dropout_rate": 0.0,
           "norm": "batch", "seed": 0, "test_accuracy": 0.5}
    hparams.write_hparams(tmp_path, [row])
    hparams.write_hparams(tmp_path, [{**row, "run": "b"}])
    assert sorted(p.name for p in (tmp_path / "hparams").iterdir() if p.is_dir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["hparams"], "no temporary folder is left behind"


def _browser_or_skip():
    """Selenium and Debian's chromium + chromium-driver; missing under CI is a failure, not a skip."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        message = (f"missing {', '.join(missing)}: install the Debian packages chromium and chromium-driver "
                   "(apt-get install chromium chromium-driver) and the Python package selenium (pip install -e '.[dev]')")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def browser(tmp_path):
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_html_report_renders_in_chromium(study, browser):
    out, report = study
    browser.get((out / "report.html").as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
    assert len(images) == len([p for p in report.files if p.suffix == ".png"])
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, f"image {alt} did not decode"
    ranking = browser.execute_script("return document.querySelectorAll('#ranking tbody tr').length;")
    assert ranking == len(report.summaries) == len(PLACEMENTS)
    runs = browser.execute_script("return document.querySelectorAll('#runs tbody tr').length;")
    assert runs == len(PLACEMENTS) * len(SEEDS)
    first = browser.execute_script("return document.querySelector('h2').textContent;")
    assert first == "Answer"
    answer_bottom = browser.execute_script("return document.getElementById('answer').getBoundingClientRect().bottom;")
    assert answer_bottom < browser.execute_script("return window.innerHeight;"), "the answer is on the first screen"
    assert report.headline[-1].split("**")[1] in browser.find_element("id", "answer").text
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    height = browser.execute_script("return document.documentElement.scrollHeight;")
    browser.set_window_size(1280, min(height + 100, 8000))
    screenshot = out / "report_screenshot.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("KERASREG_SCREENSHOT"):  # where to keep a copy for a person to look at
        shutil.copy(screenshot, os.environ["KERASREG_SCREENSHOT"])


def _rows(accuracies):
    """Rows of one architecture: {placement: [accuracy per seed]}, with the seeds' shared offsets."""
    return [{"run": f"{placement}-{seed}", "architecture": "mlp", "placement": placement,
             "dropout": "standard", "dropout_rate": 0.0 if placement == "bn_before_act" else 0.2, "norm": "batch",
             "seed": seed, "test_accuracy": value, "clean_gap": 0.1 + 0.01 * seed}
            for placement, values in accuracies.items() for seed, value in enumerate(values)]


def test_findings_compare_every_configuration_with_the_fixed_reference_not_the_best():
    offsets = [0.0, 0.03, -0.02, 0.01, 0.04]  # shared by seed: pairing removes them
    rows = _rows({"ic": [0.70 + o + 0.001 * i for i, o in enumerate(offsets)],
                  "bn_before_act": [0.64 + o for o in offsets],
                  "dropout": [0.64 + o - 0.001 * i for i, o in enumerate(offsets)]})
    config = kerasreg.StudyConfig(placements=["bn_before_act", "ic", "dropout"], seeds=list(range(5)))
    analysis = report.analyse(report.summarize(rows), rows, config.contrast_arms())
    assert analysis.headline[-1].startswith("Best test accuracy (mlp), a description, not a test: **mlp / ic")
    first = analysis.findings[0]
    assert first.startswith("mlp, test accuracy, against bn_before_act: separated: ic / standard 0.2 (+6.")
    assert "level within ±1.0 points: dropout / standard 0.2 (-0.2 points, 97.5% CI" in first
    assert "clean gap, against bn_before_act" in " ".join(analysis.findings)


def test_report_numbers_are_the_trained_models_and_each_savedmodel_was_checked_against_them(study):
    out, _ = study
    rows = {row["run"]: row for row in _compare_rows(out)}
    paths = sorted((out / "runs").glob("mlp-*"))
    reevaluated = {row["run"]: row for row in kerasreg.compare_exports(paths).rows}
    assert sorted(rows) == sorted(reevaluated)
    for name, row in rows.items():
        assert float(row["test_accuracy"]) == pytest.approx(reevaluated[name]["test_accuracy"], abs=1e-9)
        checked = kerasreg.load(out / "runs" / name).manifest["serving"]["checked"]
        assert checked["examples"] == 64 and checked["max_abs_diff"] <= 1e-4
