"""Loading a topic into a table: wizard and professional (YAML) jobs,
delimited and CSV messages."""
import re

from helpers import (COLUMNS5, TABLE5, check_delimited_table, create_job, create_service,
                     create_source, delimited_messages, job_status, professional_job,
                     start_job, unique, wait_equal, wait_rows, wait_state, wizard_job)

N = 10_000


def _assert_final_status(server, job_id, n):
    """The status a user reads once everything is in: running, n consumed, n
    written, nothing rejected, no error."""
    wait_equal(lambda: {k: job_status(server, job_id)[k] for k in
                        ("state", "messages_consumed", "rows_written", "rows_rejected")},
               {"state": "running", "messages_consumed": n, "rows_written": n, "rows_rejected": 0},
               timeout=30, what=f"job {job_id}'s counters to reach {n}")
    st = job_status(server, job_id)
    assert isinstance(st["pid"], int) and st["pid"] > 0, st
    assert st["restarts"] == 0, st
    assert st["last_error"] in (None, ""), st
    assert st["started_at"], st
    return st


def test_wizard_delimited_10k(server, pg, kafka):
    topic = kafka.create_topic(unique("wiz"), partitions=4)
    table = pg.create_table(unique("t_wiz"), TABLE5)
    svc = create_service(server, pg)
    assert svc["database_host"] == pg.host and svc["database_port"] == pg.port, svc
    src = create_source(server, svc["id"], kafka, topic, format="delimited", delimiter="|")
    assert (src["service_id"], src["topic"], src["brokers"], src["format"], src["delimiter"]) == \
        (svc["id"], topic, kafka.bootstrap, "delimited", "|"), src
    job = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5]))
    assert job["mode"] == "wizard" and job["password"] == "****", job

    start_job(server, job["id"])
    wait_state(server, job["id"], "running")
    kafka.produce(topic, delimited_messages(0, N), partitions=4)

    assert wait_rows(pg, table, N, server, job["id"]) == N
    check_delimited_table(pg, table, 0, N)
    _assert_final_status(server, job["id"], N)


def test_wizard_csv_quoted_fields(server, pg, kafka):
    """CSV source: quoted fields holding the delimiter and doubled quotes."""
    n = 2000
    topic = kafka.create_topic(unique("wizcsv"), partitions=2)
    table = pg.create_table(unique("t_wizcsv"), "column_1 varchar(32), column_2 varchar(64), "
                                                "column_3 varchar(64), column_4 bigint")
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic, format="csv", delimiter=",")
    job = create_job(server, wizard_job(src["id"], pg, table,
                                        ["column_1", "column_2", "column_3", "column_4"]))
    kafka.produce(topic, [f'"k{i}","hello, world {i}","say ""hi"" {i}",{i}' for i in range(n)],
                  partitions=2)
    start_job(server, job["id"])

    assert wait_rows(pg, table, n, server, job["id"]) == n
    assert pg.query(f'SELECT column_1, column_2, column_3, column_4 FROM "{table}" '
                    "WHERE column_1 = 'k7'") == [("k7", "hello, world 7", 'say "hi" 7', 7)]
    bad = pg.query(f"""SELECT * FROM "{table}" WHERE column_1 IS DISTINCT FROM 'k' || column_4
                       OR column_2 IS DISTINCT FROM 'hello, world ' || column_4
                       OR column_3 IS DISTINCT FROM 'say "hi" ' || column_4 LIMIT 5""")
    assert not bad, f"rows decoded wrong: {bad}"
    assert pg.scalar(f'SELECT sum(column_4) FROM "{table}"') == sum(range(n))
    _assert_final_status(server, job["id"], n)


# The seed's professional-mode example, as proper YAML, writing in INSERT mode
# (MATCH_COLUMNS / UPDATE_COLUMNS are kept: they only matter for UPDATE/MERGE).
SEED_YAML = """\
DATABASE: {database}
USER: {user}
PASSWORD: {password}
HOST: {host}
PORT: {port}
KAFKA:
  INPUT:
    SOURCE:
      BROKERS: {brokers}
      TOPIC: {topic}
      FALLBACK_OFFSET: EARLIEST
    VALUE:
      COLUMNS:
        - NAME: column_1
          TYPE: varchar(32)
        - NAME: column_2
          TYPE: bigint
        - NAME: column_3
          TYPE: numeric
        - NAME: column_4
          TYPE: varchar(32)
        - NAME: column_5
          TYPE: varchar(32)
      FORMAT: delimited
      DELIMITED_OPTION:
        DELIMITER: "|"
    ERROR_LIMIT: 20
  OUTPUT:
    SCHEMA: public
    TABLE: {table}
    MODE: INSERT
    MATCH_COLUMNS:
      - column_1
      - column_2
    UPDATE_COLUMNS:
      - column_3
      - column_4
      - column_5
    MAPPING:
      - NAME: column_1
        EXPRESSION: column_1
      - NAME: column_2
        EXPRESSION: column_2
      - NAME: column_3
        EXPRESSION: column_3
      - NAME: column_4
        EXPRESSION: column_4
      - NAME: column_5
        EXPRESSION: column_5
  COMMIT:
    MAX_ROW: 1000
    MINIMAL_INTERVAL: 1000
    CONSISTENCY: ATLEAST
  POLL:
    BATCHSIZE: 1000
    TIMEOUT: 1000
  PROPERTIES:
    group.id: {group}
"""


def seed_yaml(pg, kafka, topic, table, group=None):
    return SEED_YAML.format(database=pg.dbname, user=pg.user, password=pg.password, host=pg.host,
                            port=pg.port, brokers=kafka.bootstrap, topic=topic, table=table,
                            group=group or unique("grp"))


def _masked_password_line(config):
    m = re.search(r"^\s*PASSWORD:\s*(.*?)\s*$", config, re.M)
    return m.group(1) if m else None


def test_professional_seed_yaml_10k(server, pg, kafka):
    topic = kafka.create_topic(unique("pro"), partitions=4)
    table = pg.create_table(unique("t_pro"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    job = create_job(server, professional_job(src["id"], seed_yaml(pg, kafka, topic, table)))
    assert job["mode"] == "professional", job
    assert pg.password not in str(job), "the password is shown in the created job"
    assert _masked_password_line(job["config"]) in ("'****'", '"****"', "****"), job["config"]

    # Messages wait in the topic before the job starts: FALLBACK_OFFSET EARLIEST.
    kafka.produce(topic, delimited_messages(0, N), partitions=4)
    start_job(server, job["id"])

    assert wait_rows(pg, table, N, server, job["id"]) == N
    check_delimited_table(pg, table, 0, N)
    _assert_final_status(server, job["id"], N)


CSV_YAML = """\
DATABASE: {database}
USER: {user}
PASSWORD: {password}
HOST: {host}
PORT: {port}
VERSION: 2
KAFKA:
  INPUT:
    SOURCE:
      BROKERS: {brokers}
      TOPIC: {topic}
      FALLBACK_OFFSET: earliest
    VALUE:
      COLUMNS:
        - NAME: id
          TYPE: varchar(32)
        - NAME: note
          TYPE: varchar(64)
        - NAME: quote
          TYPE: varchar(64)
        - NAME: n
          TYPE: bigint
      FORMAT: csv
      CSV_OPTION:
        DELIMITER: ","
        QUOTE: '"'
    ERROR_LIMIT: 0
  OUTPUT:
    SCHEMA: public
    TABLE: {table}
    MODE: INSERT
    MAPPING:
      - NAME: column_1
        EXPRESSION: id
      - NAME: column_2
        EXPRESSION: note
      - NAME: column_3
        EXPRESSION: quote
      - NAME: column_4
        EXPRESSION: n
  COMMIT:
    MAX_ROW: 500
    MINIMAL_INTERVAL: 500
  PROPERTIES:
    group.id: {group}
"""


def test_professional_csv_quoted_fields(server, pg, kafka):
    """CSV in professional mode, message columns mapped to differently named
    table columns."""
    n = 2000
    topic = kafka.create_topic(unique("procsv"), partitions=2)
    table = pg.create_table(unique("t_procsv"), "column_1 varchar(32), column_2 varchar(64), "
                                                "column_3 varchar(64), column_4 bigint")
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic, format="csv", delimiter=",")
    config = CSV_YAML.format(database=pg.dbname, user=pg.user, password=pg.password, host=pg.host,
                             port=pg.port, brokers=kafka.bootstrap, topic=topic, table=table,
                             group=unique("grp"))
    job = create_job(server, professional_job(src["id"], config))
    start_job(server, job["id"])
    kafka.produce(topic, [f'"k{i}","hello, world {i}","say ""hi"" {i}",{i}' for i in range(n)],
                  partitions=2)

    assert wait_rows(pg, table, n, server, job["id"]) == n
    assert pg.query(f'SELECT column_1, column_2, column_3, column_4 FROM "{table}" '
                    "WHERE column_1 = 'k1999'") == [("k1999", "hello, world 1999", 'say "hi" 1999',
                                                     1999)]
    bad = pg.query(f"""SELECT * FROM "{table}" WHERE column_1 IS DISTINCT FROM 'k' || column_4
                       OR column_2 IS DISTINCT FROM 'hello, world ' || column_4
                       OR column_3 IS DISTINCT FROM 'say "hi" ' || column_4 LIMIT 5""")
    assert not bad, f"rows decoded wrong: {bad}"
    _assert_final_status(server, job["id"], n)


MINIMAL_YAML = """\
DATABASE: {database}
USER: {user}
PASSWORD: {password}
KAFKA:
  INPUT:
    SOURCE:
      FALLBACK_OFFSET: earliest
    VALUE:
      COLUMNS:
        - NAME: column_1
          TYPE: varchar(32)
        - NAME: column_2
          TYPE: bigint
        - NAME: column_3
          TYPE: numeric
        - NAME: column_4
          TYPE: varchar(32)
        - NAME: column_5
          TYPE: varchar(32)
  OUTPUT:
    TABLE: {table}
  PROPERTIES:
    group.id: {group}
"""


def test_professional_yaml_defaults_from_source_and_service(server, pg, kafka):
    """HOST, PORT, BROKERS, TOPIC, FORMAT and DELIMITER left out of the YAML
    come from the service and the source (doc/API.md)."""
    n = 3000
    topic = kafka.create_topic(unique("prodef"), partitions=3)
    table = pg.create_table(unique("t_prodef"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic, format="delimited", delimiter=";")
    config = MINIMAL_YAML.format(database=pg.dbname, user=pg.user, password=pg.password,
                                 table=table, group=unique("grp"))
    job = create_job(server, professional_job(src["id"], config))
    # The job shows its effective YAML: what it took from source and service.
    for value in (topic, kafka.bootstrap, str(pg.port)):
        assert value in job["config"], f"{value!r} not in the effective config:\n{job['config']}"
    assert pg.password not in job["config"]

    kafka.produce(topic, delimited_messages(0, n, delimiter=";"), partitions=3)
    start_job(server, job["id"])
    assert wait_rows(pg, table, n, server, job["id"]) == n
    check_delimited_table(pg, table, 0, n)
    _assert_final_status(server, job["id"], n)


def test_jobs_started_together_on_a_new_schema(server, pg, kafka):
    """Several jobs writing to a schema no job used before, started at once:
    each creates its auxiliary tables there concurrently, and each loads."""
    n, njobs = 1000, 3
    schema = unique("s")
    pg.execute(f'CREATE SCHEMA "{schema}"')
    svc = create_service(server, pg)
    jobs = []
    for k in range(njobs):
        topic = kafka.create_topic(unique(f"multi{k}"), partitions=2)
        table = pg.create_table(unique(f"t_multi{k}"), TABLE5, schema=schema)
        src = create_source(server, svc["id"], kafka, topic)
        job = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                            schema=schema))
        kafka.produce(topic, delimited_messages(k * n, (k + 1) * n), partitions=2)
        jobs.append((job["id"], table))
    for jid, _ in jobs:
        start_job(server, jid)
    for k, (jid, table) in enumerate(jobs):
        assert wait_rows(pg, table, n, server, jid, schema=schema) == n
        check_delimited_table(pg, table, k * n, (k + 1) * n, schema=schema)
    for jid, _ in jobs:
        st = job_status(server, jid)
        assert st["state"] == "running" and st["last_error"] in (None, ""), st


def test_poll_timeout_zero_loads_and_stops(server, pg, kafka):
    """KAFKA.POLL.TIMEOUT 0: every poll returns at once (worker/loop.h,
    loop_poll_wait_ms); the job still loads every message, in batches of
    MAX_ROW, keeps TIMEOUT in its configuration, and stops cleanly."""
    from helpers import cols, job_yaml, stop_job
    topic = kafka.create_topic(unique("poll0"), partitions=2)
    table = pg.create_table(unique("t_poll0"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    config = job_yaml(pg, kafka, topic, table, poll={"BATCHSIZE": 64, "TIMEOUT": 0},
                      value={"COLUMNS": cols(*COLUMNS5), "FORMAT": "delimited",
                             "DELIMITED_OPTION": {"DELIMITER": "|"}},
                      commit={"MAX_ROW": 500, "MINIMAL_INTERVAL": 60000})
    job = create_job(server, professional_job(src["id"], config))
    kafka.produce(topic, delimited_messages(0, 2000), partitions=2)
    start_job(server, job["id"])
    wait_rows(pg, table, 2000, server, job["id"])
    check_delimited_table(pg, table, 0, 2000)
    st = _assert_final_status(server, job["id"], 2000)
    # MINIMAL_INTERVAL is a minute: only full batches of MAX_ROW committed
    # them, each transaction one to four 500-row segments (several when the
    # backlog waits for the writer), never a part-filled one
    assert 1 <= st["batches"] <= 4, st
    yaml_text = server.call("GET", f"/jobs/{job['id']}")["config"]
    assert re.search(r"^    TIMEOUT: 0$", yaml_text, re.M), yaml_text
    stop_job(server, job["id"])
    stopped = wait_state(server, job["id"], "stopped",
                         pred=lambda s: s["last_exit"] is not None)
    assert stopped["last_exit"] == "exit code 0 (stopped)", stopped
