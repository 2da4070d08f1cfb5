"""course_lib.datasets: R's names, R's factor levels, and a clear error for unknown names.

Expected values come from R 4.2.2 (lme4 1.1-31, nlme 3.1-162): str(sleepstudy), str(Pixel),
str(Machines), levels(...), and summary(...)$Reaction etc.
"""

import pandas as pd
import pytest

from course_lib import datasets


def test_sleepstudy_has_r_columns_levels_and_values():
    df = datasets.load_sleepstudy()
    assert list(df.columns) == ["Reaction", "Days", "Subject"]
    assert df.shape == (180, 3)
    assert list(df["Subject"].cat.categories[:3]) == ["308", "309", "310"]
    assert df["Subject"].cat.categories.size == 18
    assert df["Days"].between(0, 9).all()
    # R: mean(sleepstudy$Reaction) = 298.507892; sleepstudy[1, "Reaction"] = 249.56
    assert df["Reaction"].mean() == pytest.approx(298.507892, abs=1e-6)
    assert df.loc[0, "Reaction"] == pytest.approx(249.56)


def test_pixel_has_r_columns_and_levels():
    df = datasets.load_pixel()
    assert list(df.columns) == ["Dog", "Side", "day", "pixel"]
    assert df.shape == (102, 4)
    # R: levels(Pixel$Dog) sorts as strings
    assert list(df["Dog"].cat.categories) == ["1", "10", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert list(df["Side"].cat.categories) == ["L", "R"]
    # R: mean(Pixel$pixel) = 1086.871569
    assert df["pixel"].mean() == pytest.approx(1086.871569, abs=1e-6)


def test_machines_keeps_r_worker_order_and_machine_reference_level():
    df = datasets.load_machines()
    assert list(df.columns) == ["Worker", "Machine", "score"]
    assert df.shape == (54, 3)
    assert list(df["Worker"].cat.categories) == ["6", "2", "4", "1", "3", "5"]
    assert list(df["Machine"].cat.categories) == ["A", "B", "C"]
    # R: tapply(Machines$score, Machines$Machine, mean)
    means = df.groupby("Machine", observed=True)["score"].mean()
    assert means.to_dict() == pytest.approx({"A": 52.35556, "B": 60.32222, "C": 66.27222}, abs=1e-5)


def test_loaders_return_independent_copies():
    a = datasets.load_sleepstudy()
    a.loc[0, "Reaction"] = -1.0
    assert datasets.load_sleepstudy().loc[0, "Reaction"] == pytest.approx(249.56)


def test_registry_lists_source_and_licence_for_every_data_set():
    reg = datasets.list_datasets()
    assert set(reg.index) == {"sleepstudy", "pixel", "machines"}
    assert reg["licence"].str.contains("GPL").all()
    assert reg["source"].str.len().gt(20).all()
    for name, row in reg.iterrows():
        assert len(datasets.load_dataset(name)) == int(row["rows"])


@pytest.mark.parametrize("bad", ["sleep", "", None, 3])
def test_unknown_data_set_error_lists_valid_names(bad):
    with pytest.raises(ValueError, match="valid names are 'sleepstudy', 'pixel', 'machines'"):
        datasets.load_dataset(bad)


def test_factors_are_categoricals_not_numbers():
    df = datasets.load_sleepstudy()
    assert isinstance(df["Subject"].dtype, pd.CategoricalDtype)
    assert df["Reaction"].dtype == "float64" and df["Days"].dtype == "int64"
