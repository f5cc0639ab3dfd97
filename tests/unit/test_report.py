import math

from experiments.report import mean_std, pm, replace_section, table


def test_mean_std_is_the_sample_std():
    # values 1, 2, 3, 6: mean 3, squared deviations 4 + 1 + 0 + 9 = 14, / (n - 1) = 14/3
    mean, std = mean_std([1.0, 2.0, 3.0, 6.0])
    assert mean == 3.0
    assert math.isclose(std, math.sqrt(14 / 3))


def test_mean_std_skips_missing_and_has_no_spread_for_one_value():
    mean, std = mean_std([None, 2.0, float("nan")])
    assert mean == 2.0 and math.isnan(std)
    assert pm([None]) == "n/a"
    assert pm([0.5]) == "0.50 ± n/a"


def test_pm_formats_scaled_values():
    # 0.10 and 0.30 in percent: mean 20.0, sample std sqrt(2 * 10^2 / 1) = 14.142...
    assert pm([0.1, 0.3], digits=1, scale=100) == "20.0 ± 14.1"


def test_table():
    assert table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"


def test_replace_section_keeps_the_prose_around_it(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text("intro\n<!-- t:begin -->\nold\n<!-- t:end -->\noutro\n")
    replace_section(doc, "t", "new")
    assert doc.read_text() == "intro\n<!-- t:begin -->\nnew\n<!-- t:end -->\noutro\n"
    replace_section(doc, "u", "more")
    assert doc.read_text().endswith("outro\n\n<!-- u:begin -->\nmore\n<!-- u:end -->\n")


def test_write_results_writes_the_page_and_its_json_side_by_side(tmp_path):
    import json

    from experiments.report import write_results

    out = tmp_path / "new" / "bench"
    write_results(out, "# page\n", {"meta": {"k": 50}})
    assert (tmp_path / "new" / "bench.md").read_text() == "# page\n"
    assert json.loads((tmp_path / "new" / "bench.json").read_text()) == {"meta": {"k": 50}}
