"""The synthetic bank: determinism, atomic writes, internal consistency, realism, ground truth."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate

from tierlab.config import compose
from tierlab.data import generator as g
from tierlab.data.realism import check_targets, realism_metrics
from tierlab.data.split import CalibrationSplit
from tierlab.data.synthetic import SyntheticBank


def make_source(tmp_path: Path, *overrides: str) -> SyntheticBank:
    cfg = compose(
        ["debug=fast", f"data.cache_dir={tmp_path / 'cache'}", *overrides], output_dir=tmp_path
    )
    return instantiate(cfg.data, _convert_="all")


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.parquet")}


def test_same_seed_gives_byte_identical_parquet_and_other_seed_differs(tmp_path):
    first = make_source(tmp_path).generate(tmp_path / "a")
    second = make_source(tmp_path).generate(tmp_path / "b")
    other = make_source(tmp_path, "seed=7").generate(tmp_path / "c")
    hashes = file_hashes(first)
    assert len(hashes) == 6
    assert hashes == file_hashes(second)
    assert all(file_hashes(other)[name] != digest for name, digest in hashes.items())


def test_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    source = make_source(tmp_path, "data.chunk_size=200")
    calls = {"n": 0}
    real_generate = g.BankModel.generate

    def fail_on_second_chunk(self, rng, ids):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real_generate(self, rng, ids)

    monkeypatch.setattr(g.BankModel, "generate", fail_on_second_chunk)
    with pytest.raises(RuntimeError, match="disk full"):
        source.load()
    cache = tmp_path / "cache"
    assert list(cache.iterdir()) == []  # no final folder, no temporary folder


def test_load_generates_once_then_reuses_the_cache(tmp_path):
    source = make_source(tmp_path)
    first = source.load()
    stamp = (source.folder / "transactions.parquet").stat().st_mtime_ns
    again = make_source(tmp_path).load()
    assert (source.folder / "transactions.parquet").stat().st_mtime_ns == stamp
    assert again.fingerprint() == first.fingerprint()
    assert make_source(tmp_path, "seed=3").folder != source.folder


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("data.n_customers=0", r"n_customers=0 should be >= 1"),
        ("data.n_months=1", r"n_months=1 should be >= 2"),
        ("data.chunk_size=0", r"chunk_size=0 should be >= 1"),
        ("data.segments.mass.share=-1", r"segment shares .* must be >= 0"),
    ],
)
def test_bad_generator_parameters_are_named(tmp_path, override, match):
    with pytest.raises(ValueError, match=match):
        make_source(tmp_path, override).load()


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """The default-size synthetic bank (conf/data/synthetic.yaml as shipped)."""
    tmp = tmp_path_factory.mktemp("default_bank")
    cfg = compose([f"data.cache_dir={tmp}"], output_dir=tmp)
    return cfg, instantiate(cfg.data, _convert_="all").load()


def test_tables_are_internally_consistent(bank):
    _, data = bank
    tx, cu, pr = data.transactions, data.customers.set_index("customer_id"), data.profitability
    assert len(cu) == 20000
    # no activity outside the relationship
    close = tx["customer_id"].map(cu["close_date"])
    assert not (tx["timestamp"] >= close).any()
    assert not (tx["timestamp"] < tx["customer_id"].map(cu["open_date"])).any()
    assert tx["timestamp"].max() <= data.data_end + pd.Timedelta(days=1)
    # profit is the sum of its components
    parts = pr[["nii_deposits", "wealth_fees", "nii_loans", "fees", "interchange"]].sum(axis=1)
    costs = pr[["credit_loss", "cost_to_serve"]].sum(axis=1)
    np.testing.assert_allclose(pr["profit"], parts - costs, atol=1e-3)
    # the fee income in the profit table is the fee transactions in the log
    fees = tx.loc[tx["type"] == "fee"].groupby("customer_id")["amount"].sum()
    np.testing.assert_allclose(
        pr.groupby("customer_id")["fees"].sum().reindex(fees.index), fees, rtol=1e-6
    )
    assert set(tx["type"].unique()) == set(g.TX_TYPES)
    assert set(tx["direction"].unique()) == {"credit", "debit"}
    # about 100 transactions per customer (100k customers = ~10M transactions)
    assert 70 <= len(tx) / len(cu) <= 140


def test_default_bank_has_the_shapes_of_a_real_bank(bank):
    cfg, data = bank
    metrics = realism_metrics(data)
    assert check_targets(metrics, cfg.data.targets) == []
    assert metrics["top20_profit_share"] > 1.0  # the whale curve
    assert 0.1 < metrics["loss_making_share"] < 0.9  # a loss-making tail
    assert metrics["demand_heavy_premium"] > 1.2  # liquid funds worth more at equal funds
    assert metrics["top5_aum_share"] > 0.4  # heavy-tailed funds
    assert 0.03 <= metrics["annual_attrition"] <= 0.15


def test_checks_fail_when_a_shape_is_lost(bank):
    cfg, data = bank
    metrics = realism_metrics(data)
    flattened = dict(metrics, top20_profit_share=0.6)
    assert check_targets(flattened, cfg.data.targets) == [
        "top20_profit_share=0.600 outside [1.0, 3.0]"
    ]


def discounted_holdout_profit(cfg, data) -> pd.Series:
    """The split's holdout profit per customer, discounted like the targets (month k: (1+r)^-k)."""
    split = CalibrationSplit.from_config(
        cfg.split.cutoff, cfg.split.holdout_months, data.data_start, data.data_end
    )
    hold = split.holdout(data.profitability, "month")
    k = (
        (hold["month"].dt.year - split.cutoff.year) * 12
        + hold["month"].dt.month
        - split.cutoff.month
    )
    rate = cfg.features.targets.discount_rate_monthly
    return (hold["profit"] * (1 + rate) ** -k).groupby(hold["customer_id"]).sum()


def test_realised_truth_is_the_splits_discounted_holdout_profit(bank):
    cfg, data = bank
    truth = data.truth.set_index("customer_id")
    alive = truth.loc[truth["alive_at_cutoff"]]
    expected = discounted_holdout_profit(cfg, data).reindex(alive.index, fill_value=0.0)
    np.testing.assert_allclose(alive["realised_holdout_profit"], expected, rtol=1e-9, atol=1e-3)


def test_ground_truth_values_who_is_not_a_customer_at_the_cutoff(bank):
    _, data = bank
    truth, cu = data.truth.set_index("customer_id"), data.customers.set_index("customer_id")
    cutoff = data.data_end - pd.DateOffset(months=12)
    not_yet = cu["open_date"] > cutoff
    gone = cu["close_date"] <= cutoff
    assert not_yet.sum() > 100 and gone.sum() > 100
    assert truth.loc[not_yet, "expected_holdout_profit"].isna().all()
    assert (truth.loc[gone, "expected_holdout_profit"] == 0).all()
    assert truth.loc[~not_yet & ~gone, "expected_holdout_profit"].notna().all()


def test_ground_truth_is_unbiased_and_ranks_like_realised_value(bank):
    _, data = bank
    truth = data.truth.loc[data.truth["alive_at_cutoff"]]
    expected, realised = truth["expected_holdout_profit"], truth["realised_holdout_profit"]
    assert abs(expected.sum() / realised.sum() - 1.0) < 0.05
    assert np.corrcoef(expected, realised)[0, 1] > 0.8
    by_segment = truth.groupby("latent_segment", observed=True)["expected_holdout_profit"].mean()
    assert by_segment["private"] > by_segment["affluent"] > by_segment["mass"]
    assert by_segment["dormant"] < 0


def test_ground_truth_accounts_for_attrition(tmp_path):
    """With 60 % annual attrition a fifth of the holdout value is lost to closings: a truth
    without the survival term would overstate the realised value by ~25 %."""
    segments = ["mass", "affluent", "private", "sme_owner", "dormant"]
    churn = [f"data.segments.{s}.attrition=0.6" for s in segments]
    cfg = compose(
        ["data.n_customers=20000", f"data.cache_dir={tmp_path}", *churn], output_dir=tmp_path
    )
    data = instantiate(cfg.data, _convert_="all").load()
    truth = data.truth.loc[data.truth["alive_at_cutoff"]]
    for group in (truth, truth.loc[truth["latent_segment"] != "dormant"]):
        ratio = group["expected_holdout_profit"].sum() / group["realised_holdout_profit"].sum()
        assert abs(ratio - 1.0) < 0.05
    loss_makers = truth.loc[truth["latent_segment"] == "dormant"]
    ratio = (
        loss_makers["expected_holdout_profit"].sum() / loss_makers["realised_holdout_profit"].sum()
    )
    assert abs(ratio - 1.0) < 0.1
    alive = data.customers.set_index("customer_id").loc[truth["customer_id"]]
    assert alive["close_date"].notna().mean() > 0.3  # closed during the holdout


def test_the_split_changes_only_the_ground_truth(tmp_path):
    twelve = make_source(tmp_path, "split.holdout_months=12").load()
    six = make_source(tmp_path, "split.holdout_months=6").load()
    assert twelve.fingerprint() == six.fingerprint()
    assert not np.allclose(
        twelve.truth["expected_holdout_profit"].fillna(0),
        six.truth["expected_holdout_profit"].fillna(0),
    )


def test_a_mid_month_cutoff_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"split.cutoff=2024-06-15 is not a month end"):
        make_source(tmp_path, "split.cutoff=2024-06-15", "split.holdout_months=6").load()


def test_loans_are_held_from_their_start_to_their_maturity(bank):
    _, data = bank
    bal, products = data.balances, data.products
    for loan in ("consumer_loan", "mortgage"):
        held = products.loc[products["product"] == loan].set_index("customer_id")
        outstanding = bal.loc[bal[loan] > 0]
        first = outstanding.groupby("customer_id")["month"].min()
        last = outstanding.groupby("customer_id")["month"].max()
        assert set(first.index) <= set(held.index)
        # opened no later than the first month-end with a balance, closed after the last one
        assert (held.loc[first.index, "open_date"] <= first).all()
        closes = held.loc[last.index, "close_date"]
        assert ((closes > last) | closes.isna()).all()
        # and no balance before the loan was opened
        starts = outstanding["customer_id"].map(held["open_date"])
        assert (outstanding["month"] >= starts).all()
    repaid = products.loc[products["product"] == "consumer_loan", "close_date"].notna()
    assert repaid.any()
