"""Generic CSV/Parquet loaders: data-set specifics come from config, reading problems raise one
DataValidationError naming file, column, row and rule, and the two real data sets load with their
documented figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from tierlab.config import compose
from tierlab.data import load_data
from tierlab.data.loaders import TableSource
from tierlab.data.schemas import DataValidationError

CDNOW_LIKE = """ customer_id  date number_of_cds  dollar_value\r
 00001 19970101  1  11.77\r
 00002 19970112  1  12.00\r
 00002 19970112  5  77.00\r
 00003 19970302  2  20.76\r
"""
CDNOW_COLUMNS = {"customer_id": "customer_id", "timestamp": "date", "amount": "dollar_value"}


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def load(**tables) -> TableSource:
    return TableSource(name="test", **tables).load()


def cdnow_like(tmp_path: Path, text: str = CDNOW_LIKE, **options) -> dict:
    path = write(tmp_path, "cdnow.txt", text)
    spec = {"path": path, "delimiter": r"\s+", "date_format": "%Y%m%d", "columns": CDNOW_COLUMNS}
    return {**spec, **options}


# ---------------------------------------------------------------------------------- happy paths


def test_whitespace_log_with_zero_padded_ids(tmp_path):
    data = load(transactions=cdnow_like(tmp_path))
    tx = data.transactions
    assert list(tx.columns) == ["customer_id", "timestamp", "amount", "number_of_cds"]
    assert tx["customer_id"].tolist() == ["00001", "00002", "00002", "00003"]
    assert tx["timestamp"].tolist() == list(
        pd.to_datetime(["1997-01-01", "1997-01-12", "1997-01-12", "1997-03-02"])
    )
    assert tx["amount"].dtype == "float64"
    assert tx["number_of_cds"].tolist() == [1, 1, 5, 2]
    assert data.name == "test"
    assert data.customers is None
    assert (data.data_start, data.data_end) == (
        pd.Timestamp("1997-01-01"),
        pd.Timestamp("1997-03-02"),
    )
    assert data.files == {"transactions": tmp_path / "cdnow.txt"}


def test_keep_selects_attribute_columns_and_data_end_is_configurable(tmp_path):
    source = TableSource(
        name="cdnow",
        transactions=cdnow_like(tmp_path, keep=[]),
        data_end="1998-06-30",
    )
    data = source.load()
    assert list(data.transactions.columns) == ["customer_id", "timestamp", "amount"]
    assert data.data_end == pd.Timestamp("1998-06-30")


def test_integer_ids_on_request(tmp_path):
    data = load(transactions=cdnow_like(tmp_path, id_dtype="int"))
    assert data.transactions["customer_id"].tolist() == [1, 2, 2, 3]


def test_headerless_file_with_names(tmp_path):
    text = "\n".join(CDNOW_LIKE.splitlines()[1:]) + "\n"
    names = ["customer_id", "date", "number_of_cds", "dollar_value"]
    data = load(transactions=cdnow_like(tmp_path, text, header=None, names=names))
    assert len(data.transactions) == 4


def test_signed_amounts_set_the_direction(tmp_path):
    path = write(tmp_path, "tx.csv", "id;when;value\nA;2020-01-03;-12,50\nB;2020-01-04;100,00\n")
    spec = {
        "path": path,
        "delimiter": ";",
        "decimal": ",",
        "columns": {"customer_id": "id", "timestamp": "when", "amount": "value"},
        "amount_sign": "signed",
    }
    tx = load(transactions=spec).transactions
    assert tx["amount"].tolist() == [12.5, 100.0]
    assert tx["direction"].tolist() == ["debit", "credit"]


def test_direction_column_with_value_mapping(tmp_path):
    text = "account_id,date,amount,type\n1,1995-03-24,1000.0,PRIJEM\n1,1995-04-13,3679.0,VYDAJ\n"
    spec = {
        "path": write(tmp_path, "trans.csv", text),
        "id_dtype": "int",
        "columns": {"customer_id": "account_id", "timestamp": "date", "direction": "type"},
        "amount_sign": "direction_column",
        "direction_values": {"PRIJEM": "credit", "VYDAJ": "debit"},
    }
    tx = load(transactions=spec).transactions
    assert tx["direction"].tolist() == ["credit", "debit"]
    assert tx["customer_id"].tolist() == [1, 1]


def test_customer_table_without_time_axis_in_snake_case(tmp_path):
    text = "CUST_ID,BALANCE,CREDIT LIMIT\nC10001,40.9,1000\nC10002,3202.47,\n"
    spec = {
        "path": write(tmp_path, "cc.csv", text),
        "columns": {"customer_id": "CUST_ID"},
        "snake_case": True,
    }
    data = load(customers=spec)
    assert list(data.customers.columns) == ["customer_id", "balance", "credit_limit"]
    assert data.customers["credit_limit"].isna().sum() == 1
    assert data.data_start is None and data.data_end is None


def test_transactions_and_customers_together(tmp_path):
    customers = {"path": write(tmp_path, "c.csv", "customer_id,open_date\n00001,1996-01-01\n")}
    transactions = {
        "path": write(tmp_path, "t.csv", "customer_id,timestamp,amount\n00001,1997-01-01,5\n")
    }
    data = load(customers=customers, transactions=transactions)
    assert data.customers["open_date"].tolist() == [pd.Timestamp("1996-01-01")]
    assert data.summary() == {"customers": 1, "transactions": 1}


def test_single_column_files_are_fine_when_one_column_is_all_that_is_needed(tmp_path):
    csv = load(customers={"path": write(tmp_path, "ids.csv", "customer_id\n7\n8\n")})
    pd.DataFrame({"customer_id": [7, 8]}).to_parquet(tmp_path / "ids.parquet")
    parquet = load(customers={"path": str(tmp_path / "ids.parquet")})
    assert csv.customers["customer_id"].tolist() == ["7", "8"]
    assert parquet.customers["customer_id"].tolist() == [7, 8]


def test_csv_and_parquet_give_the_same_data(tmp_path):
    csv = load(transactions=cdnow_like(tmp_path))
    csv.transactions.to_parquet(tmp_path / "tx.parquet")
    parquet = load(transactions={"path": str(tmp_path / "tx.parquet")})
    assert parquet.fingerprint() == csv.fingerprint()


def test_built_from_config_by_load_data(tmp_path):
    cfg = OmegaConf.create(
        {"_target_": "tierlab.data.loaders.TableSource", "name": "cfg"}
        | {"transactions": cdnow_like(tmp_path)}
    )
    assert load_data(cfg).summary() == {"transactions": 4}


# ---------------------------------------------------------------------------------- bad input


def test_mapped_column_missing_from_the_file(tmp_path):
    columns = {**CDNOW_COLUMNS, "amount": "value"}
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions' \(file cdnow\.txt\): column 'amount' is mapped to file column "
        r"'value', which is missing, failing rule 'column_in_dataframe'; columns in the file: "
        r"\['customer_id', 'date', 'number_of_cds', 'dollar_value'\]",
    ):
        load(transactions=cdnow_like(tmp_path, columns=columns))


def test_required_column_neither_present_nor_mapped(tmp_path):
    columns = {"customer_id": "customer_id", "timestamp": "date"}
    with pytest.raises(
        DataValidationError,
        match=r"column 'amount' is missing, failing rule 'column_in_dataframe': no file column is "
        r"named 'amount' and data.transactions.columns does not map it",
    ):
        load(transactions=cdnow_like(tmp_path, columns=columns))


def test_unparseable_dates_name_file_column_and_rows(tmp_path):
    text = CDNOW_LIKE.replace("19970112  1", "19970230  1").replace("19970302", "soon")
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions' \(file cdnow\.txt\): column 'timestamp' \(file column "
        r"'date'\) has 2 values failing rule 'date format %Y%m%d' \(at rows \[1, 3\]: "
        r"'19970230', 'soon'\)",
    ):
        load(transactions=cdnow_like(tmp_path, text))


def test_non_numeric_amounts(tmp_path):
    text = CDNOW_LIKE.replace("77.00", "$77")
    with pytest.raises(
        DataValidationError,
        match=r"column 'amount' \(file column 'dollar_value'\) has 1 value failing rule "
        r"'numeric' \(at row 2: '\$77'\)",
    ):
        load(transactions=cdnow_like(tmp_path, text))


def test_negative_amounts_with_positive_sign_convention(tmp_path):
    text = CDNOW_LIKE.replace("12.00", "-12.00")
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions' \(file cdnow\.txt\): column 'amount' has 1 value failing "
        r"rule 'greater_than_or_equal_to\(0\)' \(at row 1: -12.0\)",
    ):
        load(transactions=cdnow_like(tmp_path, text))


def test_unmapped_direction_values(tmp_path):
    text = "id,date,amount,type\n1,2020-01-01,5,IN\n2,2020-01-01,5,??\n"
    spec = {
        "path": write(tmp_path, "t.csv", text),
        "columns": {"customer_id": "id", "timestamp": "date", "direction": "type"},
        "direction_values": {"IN": "credit", "OUT": "debit"},
    }
    with pytest.raises(
        DataValidationError,
        match=r"column 'direction' \(file column 'type'\) has 1 value failing rule "
        r"\"in data.transactions.direction_values \['IN', 'OUT'\]\" \(at row 1: '\?\?'\)",
    ):
        load(transactions=spec)


def test_timestamps_after_the_configured_data_end(tmp_path):
    source = TableSource(name="t", transactions=cdnow_like(tmp_path), data_end="1997-02-28")
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions' \(file cdnow\.txt\): column 'timestamp' has 1 value failing "
        r"rule 'on or before data_end 1997-02-28' \(at row 3: 1997-03-02\)",
    ):
        source.load()


def test_transactions_of_customers_missing_from_the_customer_table(tmp_path):
    customers = {"path": write(tmp_path, "c.csv", "customer_id\n00001\n00002\n")}
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions' \(file cdnow\.txt\): column 'customer_id' has 1 value "
        r"failing rule 'in customers.customer_id' \(at row 3: '00003'\)",
    ):
        load(customers=customers, transactions=cdnow_like(tmp_path))


def test_signed_amounts_clash_with_a_direction_column_in_the_file(tmp_path):
    text = "customer_id,timestamp,amount,direction\n1,2020-01-01,-5,out\n"
    spec = {"path": write(tmp_path, "t.csv", text), "amount_sign": "signed"}
    with pytest.raises(
        DataValidationError,
        match=r"has file column 'direction' kept as 'direction', a name already taken by a mapped "
        r"column, failing rule 'unique column names'",
    ):
        load(transactions=spec)


def test_wrong_delimiter(tmp_path):
    path = write(tmp_path, "semi.csv", "id;date;amount\n1;2020-01-01;1.0\n")
    spec = {"path": path, "columns": {"customer_id": "id", "timestamp": "date"}}
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions' \(file semi\.csv\): was read as a single column "
        r"'id;date;amount' with delimiter ',', failing rule 'delimiter'; the header contains ';'",
    ):
        load(transactions=spec)


def test_wrong_encoding_names_line_and_column(tmp_path):
    text = "customer_id,city\n1,Paris\n2,Orléans\n"
    path = write(tmp_path, "latin.csv", text, encoding="latin-1")
    with pytest.raises(
        DataValidationError,
        match=r"table 'customers' \(file latin\.csv\): cannot be decoded as 'utf-8' at line 3 in "
        r"column 'city', failing rule 'encoding utf-8': byte\(s\) b'\\xe9'; set "
        r"data.customers.encoding",
    ):
        load(customers={"path": path})
    # and with the right encoding it loads
    assert load(customers={"path": path, "encoding": "latin-1"}).customers["city"][1] == "Orléans"


def test_header_only_file(tmp_path):
    path = write(tmp_path, "head.csv", "customer_id,timestamp,amount\n")
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions' \(file head\.csv\): has a header but no data rows, "
        r"failing rule 'not empty'",
    ):
        load(transactions={"path": path})


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.csv", "")
    with pytest.raises(
        DataValidationError,
        match=r"table 'customers' \(file empty\.csv\): is empty \(no header, no data\), failing "
        r"rule 'not empty'",
    ):
        load(customers={"path": path})


def test_ragged_lines_are_not_cut_silently(tmp_path):
    path = write(tmp_path, "rag.csv", "customer_id,amount\n1,2\n2,3,4\n")
    with pytest.raises(
        DataValidationError,
        match=r"table 'customers' \(file rag\.csv\): cannot be parsed as CSV with delimiter ',', "
        r"failing rule 'csv format': .*Expected 2 fields in line 3, saw 3",
    ):
        load(customers={"path": path})


def test_float_typed_ids_in_parquet(tmp_path):
    path = tmp_path / "customers.parquet"
    pd.DataFrame({"customer_id": [1.0, 2.0, None], "age": [30, 40, 50]}).to_parquet(path)
    with pytest.raises(
        DataValidationError,
        match=r"table 'customers' \(file customers\.parquet\): column 'customer_id' has dtype "
        r"float64, failing rule 'integer or string dtype'; read ids as strings or integers",
    ):
        load(customers={"path": str(path)})


def test_float_ids_that_are_whole_numbers_can_be_read_as_integers(tmp_path):
    path = tmp_path / "customers.parquet"
    pd.DataFrame({"customer_id": [1.0, 2.0, 3.0]}).to_parquet(path)
    data = load(customers={"path": str(path), "id_dtype": "int"})
    assert data.customers["customer_id"].tolist() == [1, 2, 3]
    pd.DataFrame({"customer_id": [1.0, 2.5, 3.0]}).to_parquet(path)
    with pytest.raises(
        DataValidationError,
        match=r"column 'customer_id' has 1 value failing rule 'integer id' \(at row 1: 2.5\)",
    ):
        load(customers={"path": str(path), "id_dtype": "int"})


def test_a_file_that_is_not_parquet(tmp_path):
    path = write(tmp_path, "broken.parquet", "customer_id\n1\n")
    with pytest.raises(
        DataValidationError,
        match=r"table 'customers' \(file broken\.parquet\): cannot be read as Parquet, failing "
        r"rule 'parquet file'",
    ):
        load(customers={"path": path})


# ---------------------------------------------------------------------------------- bad config


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"table 'customers': file '.*nope\.csv' does not"):
        load(customers={"path": str(tmp_path / "nope.csv")})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimeter": ";"}, r"data.transactions: unknown option\(s\) \['delimeter'\]"),
        ({"amount_sign": "negative"}, r"amount_sign='negative' should be one of"),
        ({"id_dtype": "float"}, r"id_dtype='float' should be one of \('str', 'int'\)"),
        ({"amount_sign": "direction_column"}, r"amount_sign=direction_column needs columns"),
        ({"direction_values": {"IN": "in"}}, r"direction_values maps to \['in'\]"),
        ({"format": "xlsx"}, r"format='xlsx' should be csv or parquet"),
    ],
)
def test_bad_options(tmp_path, options, message):
    spec = cdnow_like(tmp_path) | options
    with pytest.raises(ValueError, match=message):
        load(transactions=spec)


def test_unknown_suffix_needs_a_format(tmp_path):
    path = write(tmp_path, "data.xyz", "customer_id\n1\n")
    with pytest.raises(
        ValueError, match=r"cannot tell the format of 'data.xyz'.*set data.customers"
    ):
        load(customers={"path": path})


def test_no_table_configured():
    with pytest.raises(ValueError, match=r"data set 'empty' configures no table"):
        TableSource(name="empty").load()


def test_init_only_stores_its_arguments(tmp_path):
    source = TableSource(name="lazy", customers={"path": str(tmp_path / "not-there.csv")})
    assert source.customers == {"path": str(tmp_path / "not-there.csv")}


# ---------------------------------------------------------------------------------- real data


def shared_file(shared_data_dir: Path, *parts: str) -> Path:
    path = shared_data_dir.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"real data file not found: {path}")
    return path


@pytest.mark.shared_data
def test_cdnow_loads_with_its_documented_figures(tmp_path, shared_data_dir):
    shared_file(shared_data_dir, "cdnow", "CDNOW_master.txt")
    data = load_data(compose(["data=cdnow"], output_dir=tmp_path).data)
    tx = data.transactions
    assert data.name == "cdnow"
    assert len(tx) == 69_659
    assert tx["customer_id"].nunique() == 23_570
    assert tx["customer_id"].iloc[0] == "00001"
    assert tx["timestamp"].min() == pd.Timestamp("1997-01-01")
    assert tx["timestamp"].max() == pd.Timestamp("1998-06-30")
    assert (data.data_start, data.data_end) == (
        pd.Timestamp("1997-01-01"),
        pd.Timestamp("1998-06-30"),
    )
    assert round(tx["amount"].sum() * 100) == 250_031_563  # $2,500,315.63 to the cent
    assert tx["number_of_cds"].sum() == 167_881
    assert data.customers is None


@pytest.mark.shared_data
def test_cc_general_loads_with_its_documented_figures(tmp_path, shared_data_dir):
    shared_file(shared_data_dir, "cc_general", "CC GENERAL.csv")
    data = load_data(compose(["data=cc_general"], output_dir=tmp_path).data)
    customers = data.customers
    assert data.transactions is None
    assert len(customers) == customers["customer_id"].nunique() == 8_950
    assert customers["customer_id"].iloc[0] == "C10001"
    assert customers.shape[1] == 18
    missing = customers.isna().sum()
    assert missing[missing > 0].to_dict() == {"credit_limit": 1, "minimum_payments": 313}
    assert data.data_start is None and data.data_end is None


def test_n_customers_keeps_the_first_customers_by_id(tmp_path):
    data = TableSource(name="t", transactions=cdnow_like(tmp_path), n_customers=2).load()
    assert data.transactions["customer_id"].tolist() == ["00001", "00002", "00002"]


def test_n_customers_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match=r"data.n_customers=0 should be >= 1"):
        TableSource(name="t", transactions=cdnow_like(tmp_path), n_customers=0).load()
