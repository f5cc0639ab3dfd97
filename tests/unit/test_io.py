import pytest

from components.common.io import ProjectError, atomic_path, first_few, read_jsonl, write_jsonl


def test_read_jsonl_names_the_malformed_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n\n{"a": \n')
    with pytest.raises(ProjectError) as error:
        read_jsonl(path)
    assert error.value.line == 3 and str(path) in str(error.value)


def test_read_jsonl_rejects_non_objects(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(ProjectError, match="JSON object"):
        read_jsonl(path)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_existing_directory(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_write_read_roundtrip(tmp_path):
    records = [{"id": "a", "x": [1, 2]}, {"id": "b", "x": "é"}]
    write_jsonl(tmp_path / "r.jsonl", records)
    assert read_jsonl(tmp_path / "r.jsonl") == records


def test_first_few_names_ten_items_and_counts_the_rest():
    assert first_few(["a", "b"]) == "a; b"
    assert first_few(range(12)) == "0; 1; 2; 3; 4; 5; 6; 7; 8; 9; and 2 more"
