"""CSV/NPY datasets read as the native runtime reads them (the cases of
runtimes/native/src/data.rs's tests)."""
import numpy as np
import pytest

from artha_runtime import data
from artha_runtime.errors import BadInput


def write(d, name, body):
    p = d / name
    p.write_bytes(body if isinstance(body, bytes) else body.encode())
    return str(p)


def test_csv_with_and_without_header(tmp_path):
    p = write(tmp_path, "train.csv", "a,b,label\n1,2,0\n3.5,-4,1\n\n")
    d = data.load_train(p, "classify")
    assert (d.rows, d.features) == (2, 2)
    assert d.x.dtype == np.float32 and d.x.tolist() == [[1.0, 2.0], [3.5, -4.0]]
    assert d.y.dtype == np.int64 and d.y.tolist() == [0, 1]
    assert d.classes_needed() == 2
    p = write(tmp_path, "n.csv", "1,2,0.5\r\n3,4,1.5\r\n")
    d = data.load_train(p, "regress")
    assert d.rows == 2 and d.y.dtype == np.float32 and d.y.tolist() == [[0.5], [1.5]]
    # Inference drops a trailing label column.
    assert data.load_inputs(p, 2).x.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(BadInput, match="inputs have 3 columns, the model takes 5"):
        data.load_inputs(p, 5)


def test_values_round_to_f32_as_rust_does(tmp_path):
    p = write(tmp_path, "train.csv", "x,y\n0.1,0\n16777217,1\n1e-46,0\n")
    d = data.load_train(p, "classify")
    assert d.x[:, 0].tolist() == [np.float32(0.1), np.float32(16777216.0), 0.0]


@pytest.mark.parametrize("body, needle", [
    (b"a,b,label\n1,2,0\n3,x,1\n", "line 3, column 2: `x` is not a finite number"),
    (b"a,b,label\n1,2,0\n3,1\n", "line 3: 2 columns, the header has 3"),
    (b"a,b,label\n1,2,0.5\n", "line 2: label 0.5 is not a class index"),
    (b"a,b,label\n1,2,-1\n", "line 2: label -1 is not a class index"),
    (b"a,b,label\n1,2,16777216\n", "not a class index"),
    (b"a,b,label\n1,1e39,1\n", "not a finite number"),
    (b"a,b,label\n1,nan,1\n", "not a finite number"),
    (b"a,b,label\n1,1_0,1\n", "not a finite number"),
    (b"a,b,label\n", "no data rows"),
    (b"label\n1\n", "need at least one input column"),
    (b"\xff\xfe", "UTF-8"),
])
def test_bad_csv_names_file_and_line(tmp_path, body, needle):
    p = write(tmp_path, "bad.csv", body)
    with pytest.raises(BadInput, match=needle) as e:
        data.load_train(p, "classify")
    assert e.value.field == "data" and p in str(e.value) and e.value.exit_code == 2


def test_npy_round_trip_and_errors(tmp_path):
    write(tmp_path, "x.npy", data.npy_bytes(np.arange(6, dtype=np.float32).reshape(3, 2)))
    write(tmp_path, "y.npy", data.npy_bytes(np.array([0, 1, 2], np.float32)))
    p = data.find(str(tmp_path), None, True)
    d = data.load_train(p, "classify")
    assert (d.rows, d.features) == (3, 2) and d.y.tolist() == [0, 1, 2]
    for dt in ("<f8", "<i4", "<i8", "u1"):
        write(tmp_path, "x.npy", data.npy_bytes(np.arange(6).astype(dt).reshape(3, 2)))
        assert data.load_train(p, "classify").x.tolist() == [[0, 1], [2, 3], [4, 5]]
    write(tmp_path, "y.npy", data.npy_bytes(np.ones((3, 2), np.float32)))
    assert data.load_train(p, "regress").y.shape == (3, 2)
    for name, body, needle in [
        ("y.npy", data.npy_bytes(np.array([0.0, 1.0], np.float32)), "do not match 3 input rows"),
        ("y.npy", data.npy_bytes(np.ones((3, 2), np.float32)), "one-dimensional"),
        ("x.npy", data.npy_bytes(np.ones((3, 2), np.float32))[:-3], "data bytes"),
        ("x.npy", b"garbage", "magic"),
        ("x.npy", data.npy_bytes(np.ones((3, 2), np.float16)), "dtype `<f2` is not supported"),
        ("x.npy", data.npy_bytes(np.ones((3, 2, 1), np.float32)), "1-D or 2-D"),
        ("x.npy", data.npy_bytes(np.array([[1.0, np.inf]] * 3, np.float64)), "not a finite f32"),
    ]:
        write(tmp_path, "x.npy", data.npy_bytes(np.ones((3, 2), np.float32)))
        write(tmp_path, "y.npy", data.npy_bytes(np.array([0, 1, 2], np.float32)))
        write(tmp_path, name, body)
        with pytest.raises(BadInput, match=needle):
            data.load_train(p, "classify")
    # A Fortran-order file (as numpy writes one) is refused, as in Rust.
    with open(tmp_path / "x.npy", "wb") as f:
        np.lib.format.write_array(f, np.asfortranarray(np.ones((3, 2), np.float32)))
    with pytest.raises(BadInput, match="Fortran-order"):
        data.load_train(p, "classify")


def test_discovery(tmp_path):
    with pytest.raises(BadInput, match="no data file"):
        data.find(str(tmp_path), None, True)
    write(tmp_path, "iris.csv", "a,l\n1,0\n")
    assert data.find(str(tmp_path), None, True).endswith("iris.csv")
    write(tmp_path, "other.csv", "a,l\n1,0\n")
    with pytest.raises(BadInput, match="set ARTHA_DATA_FILE"):
        data.find(str(tmp_path), None, True)
    assert data.find(str(tmp_path), "other.csv", True).endswith("other.csv")
    for bad in ("../etc/passwd", "/etc/passwd", "a/../b"):
        with pytest.raises(BadInput, match="ARTHA_DATA_FILE"):
            data.find(str(tmp_path), bad, True)
    with pytest.raises(BadInput, match="not found"):
        data.find(str(tmp_path), "missing.csv", True)
    write(tmp_path, "inputs.csv", "a\n1\n")
    assert data.find(str(tmp_path), None, False).endswith("inputs.csv")
    with pytest.raises(BadInput, match="cannot read the data directory"):
        data.find(str(tmp_path / "nope"), None, True)


def test_dataset_digest_covers_x_and_y(tmp_path):
    p = write(tmp_path, "train.csv", "a,b,label\n1,2,0\n3.5,-4,1\n")
    d = data.load_train(p, "classify")
    from artha_runtime.digest import named_digest
    assert d.digest() == named_digest([("x", d.x), ("y", d.y)])
    p2 = write(tmp_path, "t2.csv", "a,b,label\n1,2,0\n3.5,-4,0\n")
    assert data.load_train(p2, "classify").digest() != d.digest()
