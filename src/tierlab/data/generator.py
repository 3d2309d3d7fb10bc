"""The generative model of the synthetic retail bank, one chunk of customers at a time.

Everything here is pure NumPy on arrays of shape ``(customers,)`` or ``(customers, months)``;
``synthetic.py`` turns the chunks into Parquet files.  The model is documented for readers in
``docs/synthetic_bank.md``; the short version:

1. Each customer has a latent **segment** (mass, affluent, private, SME owner, dormant) that sets
   the distributions of everything else (``conf/data/synthetic.yaml``, ``segments``).
2. Demographics: age, region, monthly income (lognormal), income band, occupation, a latent credit
   score and the risk grade 1 (best) .. 10 (worst) derived from it, tenure (open date).
3. Funds: total funds ``W`` are lognormal; a share goes to wealth management (if held), the rest
   to deposits, split between demand and time deposits by a Beta-distributed liquid share.  Each
   balance follows ``base * exp(g t) * exp(e_t - s^2/2)`` with AR(1) noise ``e_t``, so its
   expectation is ``base * exp(g t)``.  Card limits scale with income; loans amortise linearly.
4. Relationship: customers open before or during the window and close with a constant monthly
   hazard (annual attrition by segment, higher for the young, lower with salary credit).
   After closing there are no balances, transactions or profit: future value is often zero.
5. Transactions: Poisson counts per active month and kind (salary, card purchase, transfer, bill
   payment, cash withdrawal, fee, interest, loan repayment) with lognormal amounts scaled by
   income; channels follow a per-customer digital share.
6. Profit per month = deposit spread over funds-transfer price + wealth fees + loan spreads +
   fees + card interchange - expected credit loss (PD x LGD x EAD) - cost to serve.  It is a
   linear function of balances and transaction counts, so the *expected* profit (ground truth)
   is the same function of their expectations, weighted by the probability of still being a
   customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tierlab.data.economics import PROFIT_COLUMNS, annual_pd, monthly_profit

SEGMENTS_ORDER = ("mass", "affluent", "private", "sme_owner", "dormant")
BALANCE_COLUMNS = (
    "demand",
    "time_deposit",
    "wealth_management",
    "card_balance",
    "card_revolving",
    "card_limit",
    "consumer_loan",
    "mortgage",
)
PRODUCTS = (
    "current_account",
    "time_deposit",
    "wealth_management",
    "credit_card",
    "consumer_loan",
    "mortgage",
)
CHANNELS = ("branch", "atm", "mobile", "online", "pos", "system")
TX_TYPES = (
    "salary",
    "card_purchase",
    "transfer",
    "bill_payment",
    "cash_withdrawal",
    "fee",
    "interest",
    "loan_repayment",
)
OCCUPATIONS = ("employee", "self_employed", "retired", "student", "unemployed")
INCOME_BANDS = ("low", "lower_middle", "middle", "upper_middle", "high")


@dataclass
class Chunk:
    """One generated block of customers: column arrays for every table."""

    customers: dict[str, np.ndarray]
    products: dict[str, np.ndarray]
    balances: dict[str, np.ndarray]
    profitability: dict[str, np.ndarray]
    transactions: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]


#: Share of cash withdrawals made at ATMs (the rest at a branch counter).
ATM_SHARE = 0.9


def card_online_share(digital: np.ndarray) -> np.ndarray:
    """Probability that a card purchase is made online rather than at a POS terminal."""
    return 0.25 + 0.5 * digital


def _beta(rng: np.random.Generator, ab: np.ndarray) -> np.ndarray:
    return rng.beta(ab[:, 0], ab[:, 1])


def _ar1_noise(rng: np.random.Generator, n: int, m: int, phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) log-noise with mean correction, so that E[exp(noise)] = 1."""
    stationary_sd = sd / np.sqrt(1.0 - phi**2)
    e = np.empty((n, m))
    e[:, 0] = rng.normal(0.0, stationary_sd, n)
    shocks = rng.normal(0.0, sd, (n, m))
    for t in range(1, m):
        e[:, t] = phi * e[:, t - 1] + shocks[:, t]
    return np.exp(e - stationary_sd**2 / 2.0)


class BankModel:
    """Draws customers, balances, transactions and profit from the configured model.

    Parameters
    ----------
    params
        The resolved ``conf/data/synthetic.yaml`` node as a plain dict.
    month_starts
        ``datetime64[D]`` start of each month of the window (length ``n_months``).
    truth_cutoff_month
        Index of the last calibration month; ground truth is the expected profit of the
        ``truth_horizon`` months after it.
    """

    def __init__(self, params: dict, month_starts: np.ndarray, truth_cutoff_month: int):
        self.p = params
        self.month_starts = month_starts
        self.m = len(month_starts)
        self.cut = truth_cutoff_month
        self.horizon = int(params["truth_horizon_months"])
        seg = params["segments"]
        self.seg_names = [s for s in SEGMENTS_ORDER if s in seg] + [
            s for s in seg if s not in SEGMENTS_ORDER
        ]
        self.seg = [seg[s] for s in self.seg_names]
        shares = np.array([s["share"] for s in self.seg], dtype=float)
        if np.any(shares < 0) or shares.sum() <= 0:
            raise ValueError(f"segment shares {shares.tolist()} must be >= 0 with a positive sum")
        self.shares = shares / shares.sum()
        days = np.diff(np.append(month_starts, month_starts[-1] + np.timedelta64(31, "D")))
        next_start = (month_starts[-1].astype("datetime64[M]") + 1).astype("datetime64[D]")
        days[-1] = (next_start - month_starts[-1]).astype(int)
        self.days_in_month = days.astype(int)

    def _seg_param(self, key: str, segment: np.ndarray) -> np.ndarray:
        values = np.array([s[key] for s in self.seg], dtype=float)
        return values[segment]

    # ------------------------------------------------------------------ customers
    def _customers(self, rng: np.random.Generator, ids: np.ndarray) -> dict[str, np.ndarray]:
        n = len(ids)
        p = self.p
        segment = rng.choice(len(self.seg), size=n, p=self.shares)
        sp = self._seg_param
        age = np.clip(rng.normal(sp("age_mean", segment), sp("age_sd", segment)), 18, 92)
        income = np.exp(rng.normal(sp("log_income_mean", segment), sp("log_income_sd", segment)))
        regions = list(p["regions"])
        region_p = np.array([p["regions"][r] for r in regions], dtype=float)
        region = rng.choice(len(regions), size=n, p=region_p / region_p.sum())
        band_edges = np.asarray(p["income_band_edges"], dtype=float)
        income_band = np.searchsorted(band_edges, income)
        # occupation: SME owners are self-employed; otherwise by age.
        u = rng.random(n)
        occupation = np.where(u < 0.92, 0, 4)  # employee / unemployed
        occupation = np.where((age < 25) & (u < 0.5), 3, occupation)
        occupation = np.where(age >= 65, 2, occupation)
        occupation = np.where(segment == self.seg_names.index("sme_owner"), 1, occupation)
        # latent credit score (higher = riskier): segment shift, lower with income.
        z = rng.normal(sp("risk_shift", segment), 1.0, n) - 0.6 * (np.log(income) - 7.8)
        risk_grade = np.clip(np.ceil(4.0 + 1.6 * z), 1, 10).astype(np.int64)
        salary = rng.random(n) < sp("p_salary", segment)
        digital = _beta(rng, np.stack([sp("digital_a", segment), sp("digital_b", segment)], 1))
        digital = np.clip(digital - 0.006 * (age - 40), 0.02, 0.98)
        # open month: existing customers before the window, a share opening inside it.
        new = rng.random(n) < p["new_customer_share"]
        open_month = np.where(new, rng.integers(1, self.m, n), 0)
        tenure_days = rng.exponential(sp("tenure_years", segment) * 365.25, n).astype(np.int64)
        tenure_days = np.minimum(tenure_days + 30, ((age - 18) * 365.25).astype(np.int64))
        start = self.month_starts[0]
        offset = (rng.random(n) * self.days_in_month[open_month]).astype(np.int64)
        open_date = np.where(
            new,
            self.month_starts[open_month] + offset.astype("timedelta64[D]"),
            start - tenure_days.astype("timedelta64[D]"),
        )
        # attrition: constant monthly hazard from the annual rate, by segment and profile.
        annual = sp("attrition", segment) * np.where(age < 30, p["attrition_young_factor"], 1.0)
        annual = annual * np.where(salary, p["attrition_salary_factor"], 1.0)
        hazard = 1.0 - (1.0 - np.clip(annual, 0.0, 0.95)) ** (1.0 / 12.0)
        life = rng.geometric(np.maximum(hazard, 1e-9))  # months until closing, >= 1
        close_month = open_month + life
        closed = close_month < self.m
        close_offset = rng.random(n) * self.days_in_month[np.minimum(close_month, self.m - 1)]
        close_date = np.where(
            closed,
            self.month_starts[np.minimum(close_month, self.m - 1)]
            + close_offset.astype(np.int64).astype("timedelta64[D]"),
            np.datetime64("NaT"),
        )
        birth_date = start - (age * 365.25).astype(np.int64).astype("timedelta64[D]")
        return {
            "customer_id": ids,
            "segment": segment,
            "birth_date": birth_date,
            "age": age,
            "income": income,
            "region": region,
            "income_band": income_band,
            "occupation": occupation,
            "risk_grade": risk_grade,
            "salary": salary,
            "digital": digital,
            "open_month": open_month,
            "close_month": np.minimum(close_month, self.m),
            "open_date": open_date,
            "close_date": close_date,
            "hazard": hazard,
        }

    # ------------------------------------------------------------------ balances
    def _holdings_and_balances(self, rng, c):
        """Product holdings and monthly balances: expected values and realised values."""
        n, m, p, sp = len(c["customer_id"]), self.m, self.p, self._seg_param
        seg = c["segment"]
        t = np.arange(m)[None, :]
        active = (t >= c["open_month"][:, None]) & (t < c["close_month"][:, None])
        has = {
            "current_account": rng.random(n) < p["p_current_account"],
            "time_deposit": rng.random(n) < sp("p_time_deposit", seg),
            "wealth_management": rng.random(n) < sp("p_wealth", seg),
            "credit_card": rng.random(n) < sp("p_card", seg),
            "consumer_loan": rng.random(n) < sp("p_consumer_loan", seg),
            "mortgage": (rng.random(n) < sp("p_mortgage", seg)) & (c["age"] < 70),
        }
        # Nobody has an empty relationship: without a current account, a time deposit.
        has["time_deposit"] |= ~has["current_account"]
        funds = np.exp(rng.normal(sp("log_funds_mean", seg), sp("log_funds_sd", seg)))
        wm_share = np.where(has["wealth_management"], rng.uniform(0.2, 0.7, n), 0.0)
        liquid = _beta(rng, np.stack([sp("liquid_a", seg), sp("liquid_b", seg)], 1))
        liquid = np.where(has["time_deposit"], liquid, 1.0)
        liquid = np.where(has["current_account"], liquid, 0.0)
        deposits = funds * (1.0 - wm_share)
        growth = rng.normal(sp("funds_growth", seg), 0.004, n)[:, None]
        trend = np.exp(growth * t)  # base values are the levels of the first month
        phi, sd = p["balance_noise"]["phi"], p["balance_noise"]["sd"]
        expected, realised = {}, {}
        for name, base in (
            ("demand", deposits * liquid),
            ("time_deposit", deposits * (1.0 - liquid)),
            ("wealth_management", funds * wm_share),
        ):
            expected[name] = base[:, None] * trend
            realised[name] = expected[name] * _ar1_noise(rng, n, m, phi, sd)
        # credit card: limit from income; utilisation and revolving share.
        limit = np.round(c["income"] * rng.uniform(1.0, 3.0, n) / 500.0) * 500.0 + 500.0
        limit = np.where(has["credit_card"], limit, 0.0)
        util = rng.beta(2.0, 5.0, n)
        revolver = rng.random(n) < sp("p_revolver", seg)
        revolve_share = np.where(revolver, rng.uniform(0.5, 1.0, n), 0.0)
        card_exp = (limit * util)[:, None] * np.ones((1, m))
        card_real = np.minimum(card_exp * _ar1_noise(rng, n, m, phi, sd), limit[:, None])
        expected["card_balance"], realised["card_balance"] = card_exp, card_real
        expected["card_revolving"] = card_exp * revolve_share[:, None]
        realised["card_revolving"] = card_real * revolve_share[:, None]
        expected["card_limit"] = realised["card_limit"] = limit[:, None] * np.ones((1, m))
        # loans: linear amortisation from a start month that may precede the window.
        installment = np.zeros((n, m))
        loans = {}
        for name, (lo, hi), (tlo, thi) in (
            ("consumer_loan", (3.0, 12.0), (24, 72)),
            ("mortgage", (40.0, 120.0), (180, 360)),
        ):
            principal = np.where(has[name], c["income"] * rng.uniform(lo, hi, n), 0.0)
            term = rng.integers(tlo, thi + 1, n)
            start = np.maximum(rng.integers(-term + 1, m), c["open_month"])
            age_m = t - start[:, None]
            out = principal[:, None] * np.clip(1.0 - age_m / term[:, None], 0.0, 1.0)
            running = (age_m >= 0) & (age_m < term[:, None])
            expected[name] = realised[name] = np.where(running, out, 0.0)
            installment += np.where(running, (principal / term)[:, None], 0.0)
            has[name] &= start < c["close_month"]
            loans[name] = (start, term)
        # realised balances exist while the relationship is open; expected balances from the
        # opening on (the probability of having closed is applied by the ground truth).
        opened = t >= c["open_month"][:, None]
        for name in BALANCE_COLUMNS:
            realised[name] = np.where(active, realised[name], 0.0)
            expected[name] = np.where(opened, expected[name], 0.0)
        return has, active, expected, realised, installment, loans

    # ------------------------------------------------------------------ transactions
    def _rates(self, c, has, active, paying):
        """Expected monthly counts per transaction kind, shape (n, m) each."""
        p, sp = self.p["activity"], self._seg_param
        act = sp("activity", c["segment"])[:, None] * active
        rates = {
            "salary": np.where(c["salary"][:, None], 1.0, 0.0) * active,
            "card_purchase": p["card_purchases"] * act * has["credit_card"][:, None],
            "transfer": p["transfers"] * act,
            "bill_payment": p["bill_payments"] * act * (0.4 + 0.6 * c["salary"][:, None]),
            "cash_withdrawal": p["cash_withdrawals"] * act,
            "fee": active * has["current_account"][:, None] * self._posting("fee_every_months"),
            "interest": active * self._posting("interest_every_months"),
            "loan_repayment": 1.0 * active * paying,
        }
        return rates

    def _posting(self, key: str) -> np.ndarray:
        """1.0 in the months when a periodic posting (fee, interest) is booked."""
        every = int(self.p["activity"][key])
        return ((np.arange(self.m) + 1) % every == 0)[None, :].astype(float)

    def _amount_scale(self, c):
        """Median amount per kind and customer (lognormal sigma from config)."""
        inc = c["income"]
        a = self.p["amounts"]
        return {k: inc * a[k]["income_multiple"] for k in a}

    def _channel_probs(self, c):
        """Per customer probabilities over (branch, atm, mobile, online, pos, system)."""
        d = c["digital"]
        n = len(d)
        human = np.stack([1 - d, np.zeros(n), 0.6 * d, 0.4 * d, np.zeros(n), np.zeros(n)], 1)
        return human

    def _transactions(self, rng, c, rates, interest_amount, installment):
        n, m = rates["salary"].shape
        a = self.p["amounts"]
        scale = self._amount_scale(c)
        human = self._channel_probs(c)
        cols = {k: [] for k in ("row", "month", "kind", "amount", "channel")}
        for k_idx, kind in enumerate(TX_TYPES):
            lam = rates[kind]
            if kind in ("salary", "fee", "interest", "loan_repayment"):
                counts = (rng.random(lam.shape) < lam).astype(np.int64)
            else:
                counts = rng.poisson(lam)
            flat = counts.ravel()
            total = int(flat.sum())
            if total == 0:
                continue
            cell = np.repeat(np.arange(flat.size), flat)
            row, month = np.divmod(cell, m)
            if kind == "salary":
                amount = c["income"][row] * rng.normal(1.0, 0.02, total)
                channel = np.full(total, CHANNELS.index("online"))
            elif kind == "fee":
                amount = np.full(total, self.p["rates"]["account_fee"])
                channel = np.full(total, CHANNELS.index("system"))
            elif kind == "interest":
                amount = interest_amount[row, month]
                channel = np.full(total, CHANNELS.index("system"))
            elif kind == "loan_repayment":
                amount = installment[row, month]
                channel = np.full(total, CHANNELS.index("system"))
            else:
                sigma = a[kind]["sigma"]
                amount = scale[kind][row] * rng.lognormal(0.0, sigma, total)
                if kind == "card_purchase":
                    channel = np.where(
                        rng.random(total) < card_online_share(c["digital"][row]),
                        CHANNELS.index("online"),
                        CHANNELS.index("pos"),
                    )
                elif kind == "cash_withdrawal":
                    amount = np.maximum(np.round(amount / 10.0) * 10.0, 10.0)
                    channel = np.where(
                        rng.random(total) < ATM_SHARE,
                        CHANNELS.index("atm"),
                        CHANNELS.index("branch"),
                    )
                else:
                    cum = np.cumsum(human[row], axis=1)
                    channel = (rng.random(total)[:, None] > cum).sum(axis=1)
            keep = amount >= 0.01
            cols["row"].append(row[keep])
            cols["month"].append(month[keep])
            cols["kind"].append(np.full(int(keep.sum()), k_idx))
            cols["amount"].append(np.round(amount[keep], 2))
            cols["channel"].append(channel[keep])
        out = {k: np.concatenate(v) if v else np.empty(0, dtype=np.int64) for k, v in cols.items()}
        # timestamp: a random second inside the month (salary on the 25th, postings at month end)
        total = len(out["row"])
        dim = self.days_in_month[out["month"]]
        secs = (rng.random(total) * dim * 86400).astype(np.int64)
        kind = out["kind"]
        posting_day = np.where(kind == TX_TYPES.index("salary"), 24, dim - 1)
        posting = np.isin(kind, [TX_TYPES.index(k) for k in ("salary", "fee", "interest")])
        secs = np.where(posting, posting_day * 86400 + 3600 * 6, secs)
        ts = self.month_starts.astype("datetime64[s]")[out["month"]] + secs.astype("timedelta64[s]")
        # customers closing mid-month: drop what falls on or after the close date.
        close = c["close_date"].astype("datetime64[s]")[out["row"]]
        opened = c["open_date"].astype("datetime64[s]")[out["row"]]
        keep = (np.isnat(close) | (ts < close)) & (ts >= opened)
        out = {k: v[keep] for k, v in out.items()}
        out["timestamp"] = ts[keep]
        credit_kinds = [TX_TYPES.index(k) for k in ("salary", "interest")]
        is_credit = np.isin(out["kind"], credit_kinds)
        is_credit |= (out["kind"] == TX_TYPES.index("transfer")) & (
            rng.random(len(out["kind"])) < self.p["activity"]["transfer_credit_share"]
        )
        out["direction"] = is_credit.astype(np.int8)  # 1 = credit, 0 = debit
        order = np.lexsort((out["timestamp"], out["row"]))
        return {k: v[order] for k, v in out.items()}

    # ------------------------------------------------------------------ profit
    def _profit(self, c, bal, counts_by_channel, fee_income, card_spend):
        return monthly_profit(
            self.p["rates"],
            c["risk_grade"],
            c["rm"],
            bal,
            counts_by_channel,
            fee_income,
            card_spend,
        )

    def _expected_counts_by_channel(self, c, rates):
        human = self._channel_probs(c)
        out = {ch: np.zeros_like(rates["salary"]) for ch in ("branch", "atm", "mobile", "online")}
        for kind in ("transfer", "bill_payment"):
            for i, ch in enumerate(("branch", "atm", "mobile", "online")):
                out[ch] = out[ch] + rates[kind] * human[:, i][:, None]
        out["atm"] = out["atm"] + ATM_SHARE * rates["cash_withdrawal"]
        out["branch"] = out["branch"] + (1.0 - ATM_SHARE) * rates["cash_withdrawal"]
        p_online = card_online_share(c["digital"])[:, None]
        out["online"] = out["online"] + rates["salary"] + rates["card_purchase"] * p_online
        out["pos"] = rates["card_purchase"] * (1.0 - p_online)
        return out

    # ------------------------------------------------------------------ chunk
    def generate(self, rng: np.random.Generator, ids: np.ndarray) -> Chunk:
        """Generate every table for the customers ``ids``."""
        c = self._customers(rng, ids)
        c["rm"] = self._seg_param("relationship_manager", c["segment"]) > 0
        has, active, exp_bal, bal, installment, loans = self._holdings_and_balances(rng, c)
        paying = installment > 0
        rates = self._rates(c, has, active, paying)
        cr = self.p["rates"]["customer_rate"]
        interest_rate_m = (
            bal["demand"] * cr["demand"] + bal["time_deposit"] * cr["time_deposit"]
        ) / 12.0
        every = int(self.p["activity"]["interest_every_months"])
        interest_amount = interest_rate_m * every
        tx = self._transactions(rng, c, rates, interest_amount, installment)

        n, m = active.shape
        cell = tx["row"] * m + tx["month"]

        def per_cell(mask, weights=None):
            w = None if weights is None else weights[mask]
            return np.bincount(cell[mask], weights=w, minlength=n * m).reshape(n, m)

        kind, ch = tx["kind"], tx["channel"]
        counts_by_channel = {
            name: per_cell((ch == CHANNELS.index(name)) & (kind != TX_TYPES.index("fee")))
            for name in ("branch", "atm", "mobile", "online", "pos")
        }
        fee_income = per_cell(kind == TX_TYPES.index("fee"), tx["amount"])
        card_spend = per_cell(kind == TX_TYPES.index("card_purchase"), tx["amount"])
        bal["_active"] = active.astype(float)
        profit = self._profit(c, bal, counts_by_channel, fee_income, card_spend)

        # expected profit, ground truth: same linear function of expected inputs, times the
        # probability of still being a customer k months after the cut-off.
        alive_at_cut = active[:, self.cut]
        months_after = np.arange(m)[None, :] - self.cut
        survival = np.where(
            months_after > 0, (1.0 - c["hazard"][:, None]) ** np.maximum(months_after, 0), 0.0
        )
        survival = survival * alive_at_cut[:, None]
        window = (months_after >= 1) & (months_after <= self.horizon)
        exp_rates = self._rates(c, has, np.ones(active.shape), paying)
        exp_counts = self._expected_counts_by_channel(c, exp_rates)
        scale = self._amount_scale(c)
        sig = self.p["amounts"]["card_purchase"]["sigma"]
        exp_card_spend = (
            exp_rates["card_purchase"] * (scale["card_purchase"] * np.exp(sig**2 / 2))[:, None]
        )
        exp_fee = exp_rates["fee"] * self.p["rates"]["account_fee"]
        exp_bal["_active"] = np.ones(active.shape)
        exp_profit = self._profit(c, exp_bal, exp_counts, exp_fee, exp_card_spend)["profit"]
        # month k after the cut-off weighs (1 + r)^-k, as in the holdout targets
        rate = float(self.p["truth_discount_rate_monthly"])
        discount = window * (1.0 + rate) ** -np.maximum(months_after, 0).astype(float)
        expected_holdout = (exp_profit * survival * discount).sum(axis=1)
        realised_holdout = (profit["profit"] * discount).sum(axis=1)
        # not yet a customer at the cut-off: no value to predict
        not_yet = c["open_month"] > self.cut
        expected_holdout[not_yet] = np.nan
        realised_holdout[not_yet] = np.nan

        delinquent_draw = rng.random(active.shape)
        return self._to_tables(
            c,
            has,
            loans,
            active,
            bal,
            profit,
            tx,
            delinquent_draw,
            expected_holdout,
            realised_holdout,
        )

    def _month_start(self, index: np.ndarray) -> np.ndarray:
        """Start day of month ``index`` of the window (negative = before the window)."""
        first = self.month_starts[0].astype("datetime64[M]")
        return (first + index.astype("timedelta64[M]")).astype("datetime64[D]")

    def _product_dates(self, c, loans, prow, pk):
        """Open and close dates of each holding: with the relationship, except that loans run
        from their start month to their maturity."""
        open_date = c["open_date"][prow].copy()
        close_date = c["close_date"][prow].copy()
        for name, (start, term) in loans.items():
            is_loan = pk == PRODUCTS.index(name)
            rows = prow[is_loan]
            loan_open = self._month_start(start[rows])
            open_date[is_loan] = np.maximum(open_date[is_loan], loan_open)
            maturity_month = start[rows] + term[rows]
            maturity = np.where(
                maturity_month < self.m,
                self._month_start(np.minimum(maturity_month, self.m)),
                np.datetime64("NaT"),
            )
            rel_close = close_date[is_loan]
            close_date[is_loan] = np.where(
                np.isnat(maturity),
                rel_close,
                np.where(np.isnat(rel_close), maturity, np.minimum(maturity, rel_close)),
            )
        return open_date, close_date

    def _to_tables(
        self,
        c,
        has,
        loans,
        active,
        bal,
        profit,
        tx,
        delinquent_draw,
        expected_holdout,
        realised_holdout,
    ):
        n, m = active.shape
        ids = c["customer_id"]
        customers = {
            "customer_id": ids,
            "open_date": c["open_date"],
            "close_date": c["close_date"],
            "birth_date": c["birth_date"],
            "region": c["region"],
            "income_band": c["income_band"],
            "occupation": c["occupation"],
            "risk_grade": c["risk_grade"],
        }
        # products: one row per holding; open at the relationship start and close with it,
        # loans from their start month to their maturity.
        prod_rows, prod_ids = [], []
        for k, name in enumerate(PRODUCTS):
            held = has[name]
            prod_rows.append(np.full(int(held.sum()), k))
            prod_ids.append(np.flatnonzero(held))
        prow = np.concatenate(prod_ids)
        pk = np.concatenate(prod_rows)
        order = np.lexsort((pk, prow))
        prow, pk = prow[order], pk[order]
        open_date, close_date = self._product_dates(c, loans, prow, pk)
        products = {
            "customer_id": ids[prow],
            "product": pk,
            "open_date": open_date,
            "close_date": close_date,
            "limit": np.where(
                pk == PRODUCTS.index("credit_card"), bal["card_limit"].max(1)[prow], 0.0
            ),
        }
        r, t = np.nonzero(active)
        balances = {"customer_id": ids[r], "month_index": t}
        for name in BALANCE_COLUMNS:
            balances[name] = np.round(bal[name][r, t], 2)
        # days past due: consecutive months of delinquency for credit holders, capped at 90.
        credit = (bal["card_balance"] + bal["consumer_loan"] + bal["mortgage"]) > 0
        pd_m = annual_pd(self.p["rates"], c["risk_grade"]) / 12.0
        dpd = np.zeros((n, m), dtype=np.int64)
        delinquent = delinquent_draw < (pd_m * 4.0)[:, None]
        run = np.zeros(n, dtype=np.int64)
        for j in range(m):
            run = np.where(delinquent[:, j] & credit[:, j], np.minimum(run + 1, 3), 0)
            dpd[:, j] = run * 30
        balances["days_past_due"] = dpd[r, t]
        profitability = {"customer_id": ids[r], "month_index": t}
        for name in PROFIT_COLUMNS:
            profitability[name] = np.round(profit[name][r, t], 4)
        transactions = {
            "customer_id": ids[tx["row"]],
            "timestamp": tx["timestamp"],
            "amount": tx["amount"],
            "direction": tx["direction"],
            "channel": tx["channel"],
            "type": tx["kind"],
        }
        truth = {
            "customer_id": ids,
            "latent_segment": c["segment"],
            "monthly_attrition_hazard": c["hazard"],
            "alive_at_cutoff": active[:, self.cut],
            "expected_holdout_profit": expected_holdout,
            "realised_holdout_profit": realised_holdout,
        }
        return Chunk(customers, products, balances, profitability, transactions, truth)
