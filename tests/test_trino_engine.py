"""TrinoEngine against a local Trino-protocol server, over real HTTP with the real client."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from genesis.engines.base import EngineError
from genesis.engines.trino import TrinoEngine
from genesis.project.types import arrow_type, normalize_type
from tests.servers.trino_server import Faults, TrinoProtocolServer

UTC = UTC
PASSWORD = "pw-Sup3rSecret!"
TOKEN = "eyJ.tok3n-Sup3rSecret"

EVERY_TYPE = pa.table({
    "id": pa.array([1, 2, 3], pa.int32()),
    "big": pa.array([2**40, None, -5], pa.int64()),
    "name": pa.array(["Alpha", None, "Ünïcode ✓ 'quoted'"], pa.string()),
    "flag": pa.array([True, False, None], pa.bool_()),
    "ratio": pa.array([0.5, None, -1e10], pa.float64()),
    "budget": pa.array([Decimal("1234567890123456.78"), None, Decimal("-0.01")], pa.decimal128(18, 2)),
    "launch": pa.array([date(2024, 1, 31), None, date(1999, 12, 31)], pa.date32()),
    "updated": pa.array([datetime(2024, 1, 31, 12, 34, 56, 123456), None, datetime(2000, 1, 1)],
                        pa.timestamp("us")),
    "seen_at": pa.array([datetime(2024, 1, 31, 12, 34, 56, 654321, tzinfo=UTC), None,
                         datetime(1970, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
    "tags": pa.array([["a", "b"], None, []], pa.list_(pa.string())),
    "scores": pa.array([[1, 2, None], [], None], pa.list_(pa.int32())),
})
TRINO_TYPES = {
    "id": "integer", "big": "bigint", "name": "varchar", "flag": "boolean", "ratio": "double",
    "budget": "decimal(18,2)", "launch": "date", "updated": "timestamp", "seen_at": "timestamp with time zone",
    "tags": "array(varchar)", "scores": "array(integer)",
}
MOVIES = pa.table({
    "movie_id": pa.array(range(1, 26), pa.int64()),
    "title": [f"Movie {i:02d}" for i in range(1, 26)],
})


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def make_server():
    """Start servers with the test tables loaded; all are stopped after the test."""
    servers = []

    def make(**options) -> TrinoProtocolServer:
        options.setdefault("page_size", 4)
        server = TrinoProtocolServer(**options).start()
        servers.append(server)
        server.load_table("iceberg.studio.every_type", EVERY_TYPE)
        server.load_table("iceberg.studio.movie", MOVIES)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def server(make_server) -> TrinoProtocolServer:
    return make_server()


def engine_for(server: TrinoProtocolServer, **settings) -> TrinoEngine:
    base = {"host": "127.0.0.1", "port": server.port, "http_scheme": "http", "user": "genesis-ci",
            "catalog": "iceberg", "schema": "studio", "max_attempts": 3, "retry_backoff": 0.01,
            "request_timeout": 5}
    base.update(settings)
    return TrinoEngine(base)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- results


def test_every_type_round_trips_like_duckdb(server):
    sql = "SELECT * FROM iceberg.studio.every_type ORDER BY id"
    table = engine_for(server).execute(sql, label="round-trip")

    expected_schema = pa.schema([(name, arrow_type(t)) for name, t in TRINO_TYPES.items()])
    assert table.schema.equals(expected_schema)
    direct = server.duckdb(sql).cast(expected_schema)
    assert table.to_pylist() == direct.to_pylist()
    assert table.to_pylist() == EVERY_TYPE.to_pylist()


def test_trino_literals_come_back_typed(server):
    sql = ("SELECT DATE '2024-02-29' AS d, CAST('12.30' AS decimal(10,2)) AS amount, "
           "TIMESTAMP '2024-01-01 10:11:12.345678' AS ts, ARRAY['x', 'y'] AS arr, "
           "true AS yes, 7 AS n, CAST(7 AS bigint) AS big, 2.5e0 AS dbl, 1 + 1")
    table = engine_for(server).execute(sql)
    assert table.schema.types == [pa.date32(), pa.decimal128(10, 2), pa.timestamp("us"),
                                  pa.list_(pa.string()), pa.bool_(), pa.int32(), pa.int64(),
                                  pa.float64(), pa.int32()]
    assert table.column_names[-1] == "_col8"  # Trino's name for an unaliased expression
    assert table.to_pylist() == [{
        "d": date(2024, 2, 29), "amount": Decimal("12.30"), "ts": datetime(2024, 1, 1, 10, 11, 12, 345678),
        "arr": ["x", "y"], "yes": True, "n": 7, "big": 7, "dbl": 2.5, "_col8": 2}]


def test_empty_result_keeps_its_types(server):
    table = engine_for(server).execute("SELECT * FROM iceberg.studio.every_type WHERE id < 0")
    assert table.num_rows == 0
    assert table.schema.field("budget").type == pa.decimal128(18, 2)


def test_results_page_across_several_responses(make_server):
    server = make_server(page_size=4)
    table = engine_for(server).execute("SELECT movie_id, title FROM movie ORDER BY movie_id")
    assert table.column("movie_id").to_pylist() == list(range(1, 26))
    pages = {r.page for r in server.requests("GET", "/v1/statement/executing/")}
    assert pages == set(range(7))  # 25 rows in pages of 4


def test_source_tags_and_session_reach_the_server(server):
    engine = engine_for(server, session_properties={"query_max_run_time": "10m"})
    engine.execute("SELECT 1", label="movies-in-photography")
    post = server.posts[-1]
    assert post.headers["X-Trino-Source"] == "genesis"
    assert post.headers["X-Trino-Client-Tags"] == "movies-in-photography"
    assert post.headers["X-Trino-User"] == "genesis-ci"
    assert post.headers["X-Trino-Catalog"] == "iceberg"
    assert post.headers["X-Trino-Schema"] == "studio"
    assert post.headers["X-Trino-Session"] == "query_max_run_time=10m"
    assert post.sql == "SELECT 1"


def test_table_columns(server):
    engine = engine_for(server)
    assert engine.table_columns("iceberg.studio.every_type") == TRINO_TYPES
    assert engine.table_columns("studio.movie") == {"movie_id": "bigint", "title": "varchar"}
    assert engine.table_columns("iceberg.studio.no_such_table") is None
    assert engine.table_columns("nowhere.studio.movie") is None
    assert all(normalize_type(t) == t for t in TRINO_TYPES.values())


# ----------------------------------------------------------------------------- auth


def test_basic_auth_accepted_and_rejected(make_server, caplog):
    caplog.set_level(logging.DEBUG)
    server = make_server(basic_auth=("alice", PASSWORD))
    good = engine_for(server, user="alice", auth={"type": "basic", "password": PASSWORD})
    assert good.execute("SELECT 1 AS one").to_pylist() == [{"one": 1}]
    assert server.posts[-1].auth_scheme == "Basic"

    bad = engine_for(server, user="alice", auth={"type": "basic", "password": "wrong-" + PASSWORD})
    with pytest.raises(EngineError) as info:
        bad.execute("SELECT 1")
    assert str(info.value) == "error: Trino rejected the credentials for user alice"
    assert not info.value.transient
    assert [p.status for p in server.posts] == [200, 401]  # a 401 is not retried
    assert_no_secret(PASSWORD, info.value, caplog, good, bad)


def test_jwt_auth_accepted_and_rejected(make_server, caplog):
    caplog.set_level(logging.DEBUG)
    server = make_server(bearer_token=TOKEN)
    good = engine_for(server, auth={"type": "jwt", "token": TOKEN})
    assert good.execute("SELECT 2 AS two").to_pylist() == [{"two": 2}]
    assert server.posts[-1].auth_scheme == "Bearer"

    for auth in ({"type": "jwt", "token": TOKEN + "x"}, {"type": "none"}):
        with pytest.raises(EngineError, match="Trino rejected the credentials for user genesis-ci"):
            engine_for(server, auth=auth).execute("SELECT 1")
    with pytest.raises(EngineError) as info:
        engine_for(server, auth={"type": "jwt", "token": "x" + TOKEN}).execute("SELECT 1")
    assert_no_secret(TOKEN, info.value, caplog, good)


def test_credentials_are_not_sent_in_clear_text_to_remote_hosts():
    with pytest.raises(EngineError, match="refusing to send credentials over plain http") as info:
        TrinoEngine({"host": "trino.example.com", "http_scheme": "http", "user": "u",
                     "auth": {"type": "jwt", "token": TOKEN}})
    assert TOKEN not in str(info.value)


def assert_no_secret(secret: str, error: EngineError, caplog, *engines: TrinoEngine) -> None:
    texts = [str(error), repr(error), error.render(), caplog.text]
    texts += [repr(e) for e in engines] + [repr(vars(e)) for e in engines]
    assert caplog.records, "expected the client's debug logs to be captured"
    for text in texts:
        assert secret not in text


# ----------------------------------------------------------------------------- faults


def test_503s_are_retried_then_succeed(make_server):
    server = make_server(fail_first=2)
    table = engine_for(server, max_attempts=3).execute("SELECT count(*) AS n FROM movie")
    assert table.to_pylist() == [{"n": 25}]
    assert [p.status for p in server.posts] == [503, 503, 200]


def test_503s_give_up_after_a_bounded_number_of_attempts(make_server):
    server = make_server(fail_first=1000)
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"unavailable \(HTTP 503\).*gave up after 2 attempts") as info:
        engine_for(server, max_attempts=2).execute("SELECT 1")
    assert info.value.transient
    assert len(server.posts) == 4  # 2 HTTP attempts by the client x 2 query attempts
    assert time.monotonic() - started < 5


def test_timeout_cancels_the_query_on_the_cluster(make_server):
    server = make_server(slow_seconds=2.0)
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"timed out after 0\.3 s") as info:
        engine_for(server).execute("SELECT * FROM movie", label="slow", timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert not info.value.transient
    post = server.posts[-1]
    deletes = server.deletes
    assert [d.query_id for d in deletes] == [post.query_id]
    assert deletes[0].status == 204
    assert len(server.posts) == 1  # a timeout is not retried


def test_connection_dropped_before_a_page_is_retried_by_the_client(make_server):
    server = make_server(drop_page=2, drop_mode="close", drop_times=1)
    table = engine_for(server).execute("SELECT movie_id FROM movie ORDER BY movie_id")
    assert table.column("movie_id").to_pylist() == list(range(1, 26))
    page_two = [r for r in server.requests("GET") if r.page == 2]
    assert [r.status for r in page_two] == [None, 200]  # dropped once, then fetched again
    assert len(server.posts) == 1


def test_connection_dropped_mid_page_restarts_the_whole_query(make_server):
    server = make_server(drop_page=3, drop_mode="truncate", drop_times=1)
    table = engine_for(server).execute("SELECT movie_id FROM movie ORDER BY movie_id")
    assert table.column("movie_id").to_pylist() == list(range(1, 26))  # complete, no duplicates
    first, second = server.posts
    assert second.query_id != first.query_id
    assert first.query_id in {d.query_id for d in server.deletes}  # the broken query was cancelled


def test_connection_dropped_every_time_fails_without_partial_rows(make_server):
    server = make_server(drop_page=1, drop_mode="truncate", drop_times=None)
    with pytest.raises(EngineError, match="lost the connection to Trino") as info:
        engine_for(server, max_attempts=2).execute("SELECT movie_id FROM movie")
    assert info.value.transient
    assert len(server.posts) == 2


def test_user_error_is_not_retried_and_is_located(server):
    sql = "SELECT\n  movie_id,\n  no_such_column\nFROM iceberg.studio.movie"
    with pytest.raises(EngineError, match="no_such_column") as info:
        engine_for(server).execute(sql)
    assert (info.value.sql_line, info.value.sql_col) == (3, 3)
    assert not info.value.transient
    assert len(server.posts) == 1
    assert "\n" not in info.value.message


def test_missing_table_and_syntax_errors_are_located(server):
    engine = engine_for(server)
    with pytest.raises(EngineError, match="nope") as info:
        engine.execute("SELECT *\nFROM iceberg.studio.nope")
    assert (info.value.sql_line, info.value.sql_col) == (2, 6)
    with pytest.raises(EngineError) as info:
        engine.execute("SELECT 1 FORM movie")
    assert (info.value.sql_line, info.value.sql_col) == (1, 15)
    assert len(server.posts) == 2


def test_unreachable_server_is_one_clear_line():
    port = closed_port()
    engine = TrinoEngine({"host": "127.0.0.1", "port": port, "http_scheme": "http", "user": "u",
                          "max_attempts": 1})
    with pytest.raises(EngineError) as info:
        engine.execute("SELECT 1")
    assert info.value.message == f"cannot reach Trino at http://127.0.0.1:{port}: connection refused"


def test_settings_are_checked():
    with pytest.raises(EngineError, match="'host' is required"):
        TrinoEngine({"user": "u"})
    with pytest.raises(EngineError, match="unknown auth type 'kerberos'"):
        TrinoEngine({"host": "h", "user": "u", "auth": {"type": "kerberos"}})
    with pytest.raises(EngineError, match="needs a password"):
        TrinoEngine({"host": "h", "user": "u", "auth": {"type": "basic"}})
    with pytest.raises(EngineError, match="'port' must be a number"):
        TrinoEngine({"host": "h", "user": "u", "port": "eighty"})
    engine = TrinoEngine({"host": "h", "user": "u"})
    assert (engine.url, engine.name) == ("https://h:443", "trino")
    engine = TrinoEngine({"host": "h", "user": "u", "port": "8443", "session_properties": {"spill_enabled": True}})
    assert (engine.port, engine.session_properties) == (8443, {"spill_enabled": "true"})


def test_server_faults_can_be_reset(make_server):
    server = make_server(fail_first=1)
    server.faults = Faults()  # counters start over with the new Faults
    assert engine_for(server).execute("SELECT 1 AS x").to_pylist() == [{"x": 1}]
    assert [p.status for p in server.posts] == [200]


def test_a_single_500_is_retried(make_server):
    server = make_server(fail_first=1, fail_status=500)
    table = engine_for(server, max_attempts=3).execute("SELECT count(*) AS n FROM movie")
    assert table.to_pylist() == [{"n": 25}]
    assert [p.status for p in server.posts] == [500, 200]
