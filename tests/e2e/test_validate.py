"""Validation against a real database (POST /jobs/validate, dry_run), the
effective YAML (GET /jobs/{id}/config) and its round trip, and YAML errors
reported all at once with their path and line."""
from helpers import (cols, create_job, create_service, create_source, error_of, free_port, job_dict,
                     job_yaml, professional_job, start_job, to_yaml, unique, wait_query,
                     wizard_job, yaml_items, yaml_line, yaml_unquote, yaml_value)


def _setup(server, pg, kafka, prefix, table_sql, schema=None, partitions=1):
    """A fresh schema (so that anything a check leaves behind would show), a
    table in it, a topic, a service and a source."""
    schema = schema or unique("v")
    pg.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    table = pg.create_table(unique(f"t_{prefix}"), table_sql, schema=schema)
    topic = kafka.create_topic(unique(prefix), partitions=partitions)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    return schema, table, topic, src["id"]


def _objects(pg, schema):
    """Every relation, function and type of the schema: validating must not
    add any."""
    return pg.query("""SELECT 'r', relname FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace
                       WHERE nspname = %s
                       UNION ALL SELECT 'f', proname FROM pg_proc p JOIN pg_namespace n
                       ON n.oid = pronamespace WHERE nspname = %s ORDER BY 1, 2""", (schema, schema))


def _check_answer(ans):
    """The validate answer's shape (doc/API.md)."""
    assert isinstance(ans, dict), ans
    for k in ("valid", "database_checked", "errors", "statements"):
        assert k in ans, f"no {k!r} in the validate answer: {ans}"
    assert isinstance(ans["valid"], bool) and isinstance(ans["database_checked"], bool), ans
    assert isinstance(ans["errors"], list) and isinstance(ans["statements"], list), ans
    for e in ans["errors"]:
        assert {"field", "line", "code", "message"} <= set(e), f"an error lacks a key: {e}"
        assert isinstance(e["message"], str) and e["message"], e
    assert ans["valid"] == (not ans["errors"]), f"valid must mean no errors: {ans}"
    return ans


def _errors_on(ans, prefix):
    return [e for e in ans["errors"] if (e.get("field") or "").startswith(prefix)]


VALUE5 = [("id", "integer"), ("name", "text"), ("amount", "numeric"), ("flag", "boolean"),
          ("extra", "text")]


def test_validate_reports_every_problem_at_once(server, pg, kafka):
    """A MERGE job against a real table with three database problems: a mapped
    column the table does not have, a source type the column cannot take, and
    MATCH_COLUMNS that are not unique.  validate reports them all, each with
    its YAML path, line and code; nothing is stored or created."""
    schema, table, topic, src = _setup(
        server, pg, kafka, "val",
        "id integer PRIMARY KEY, name varchar(10), amount numeric, created timestamptz")
    config = job_yaml(pg, kafka, topic, table, schema=schema, mode="MERGE",
                      value={"COLUMNS": cols(*VALUE5), "FORMAT": "delimited",
                             "DELIMITED_OPTION": {"DELIMITER": "|"}},
                      output={"MATCH_COLUMNS": ["name"], "UPDATE_COLUMNS": ["amount"],
                              "MAPPING": [{"NAME": "id", "EXPRESSION": "id"},
                                          {"NAME": "name", "EXPRESSION": "name"},
                                          {"NAME": "amount", "EXPRESSION": "amount"},
                                          {"NAME": "no_such_column", "EXPRESSION": "extra"},
                                          {"NAME": "created", "EXPRESSION": "flag"}]})
    before = _objects(pg, schema)
    body = professional_job(src, config)
    del body["name"]  # validate does not need a name
    ans = _check_answer(server.call("POST", "/jobs/validate", body))
    assert ans["valid"] is False and ans["database_checked"] is True, ans
    codes = {e["code"] for e in ans["errors"]}
    assert {"no_column", "type_mismatch", "not_unique"} <= codes, \
        f"expected no_column, type_mismatch and not_unique together: {ans['errors']}"

    def lines_of(needle, extra=None):
        first = yaml_line(config, needle)
        return {first, yaml_line(config, extra, first)} if extra else {first}

    checks = [("no_column", "KAFKA.OUTPUT.MAPPING[3]",
               lines_of("NAME: no_such_column", "EXPRESSION:"), "no_such_column"),
              ("type_mismatch", "KAFKA.OUTPUT.MAPPING[4]",
               lines_of("NAME: created", "EXPRESSION:"), "created"),
              ("not_unique", "KAFKA.OUTPUT.MATCH_COLUMNS",
               lines_of("MATCH_COLUMNS:", "name"), None)]
    for code, path, lines, word in checks:
        hits = [e for e in _errors_on(ans, path) if e["code"] == code]
        assert hits, f"no {code} error on {path}: {ans['errors']}"
        e = hits[0]
        assert e["line"] in lines, f"{path} is on line(s) {sorted(lines)}, the error says {e}"
        if word:
            assert word in e["message"], f"the message should name {word!r}: {e}"
    assert server.call("GET", "/jobs")["total"] == 0
    assert _objects(pg, schema) == before, "validate left objects in the schema"
    assert pg.count(table, schema) == 0


def test_validate_definition_errors_without_database(server, pg, kafka):
    """A definition that does not parse is reported (path and line) without
    a database check."""
    schema, table, topic, src = _setup(server, pg, kafka, "vdef", "id integer")
    config = job_yaml(pg, kafka, topic, table, schema=schema,
                      value={"COLUMNS": cols(("id", "integer")), "FORMAT": "delimited",
                             "DELIMITED_OPTION": {"DELIMITER": "|"}},
                      commit={"MAX_ROW": "lots", "MINIMAL_INTERVAL": 500})
    ans = _check_answer(server.call("POST", "/jobs/validate", professional_job(src, config)))
    assert ans["valid"] is False and ans["database_checked"] is False, ans
    hits = _errors_on(ans, "KAFKA.COMMIT.MAX_ROW")
    assert hits and hits[0]["line"] in (yaml_line(config, "MAX_ROW:"), yaml_line(config, "COMMIT:")), \
        ans["errors"]


def test_validate_valid_job_and_dry_run_store_nothing(server, pg, kafka):
    """A sound job: valid, database checked, the SQL of a batch in
    `statements`.  dry_run on create (query parameter or body field) gives
    the same answer and stores nothing; a bad one reports without storing."""
    schema, table, topic, src = _setup(server, pg, kafka, "vok",
                                       "id integer PRIMARY KEY, name text, amount numeric")
    value = {"COLUMNS": cols(("id", "integer"), ("name", "text"), ("amount", "numeric")),
             "FORMAT": "delimited", "DELIMITED_OPTION": {"DELIMITER": "|"}}
    config = job_yaml(pg, kafka, topic, table, schema=schema, mode="MERGE", value=value,
                      error_limit="25%",
                      output={"MATCH_COLUMNS": ["id"], "ORDER_COLUMNS": ["amount"],
                              "UPDATE_COLUMNS": ["name", "amount"],
                              "MAPPING": {"id": "id", "name": "upper(name)",
                                          "amount": "amount * 100"}})
    before = _objects(pg, schema)
    existing = server.call("GET", "/jobs")["total"]
    body = professional_job(src, config)
    ans = _check_answer(server.call("POST", "/jobs/validate", body))
    assert ans["valid"] is True and ans["database_checked"] is True and ans["errors"] == [], ans
    st = ans["statements"]
    assert st and all(isinstance(s, str) and s.strip() for s in st), ans
    assert any(table in s for s in st), f"no statement names the table {table}: {st}"

    for how in ("query", "body"):
        b = dict(body)
        if how == "query":
            resp = server.request("POST", "/jobs?dry_run=true", b)
        else:
            b["dry_run"] = True
            resp = server.request("POST", "/jobs", b)
        assert resp.status_code == 200, f"dry_run ({how}): HTTP {resp.status_code}: {resp.text}"
        dry = _check_answer(resp.json())
        assert dry["valid"] is True and dry["database_checked"] is True, dry
        assert dry["statements"] == st, f"dry_run ({how}) and validate differ:\n{dry}\n{ans}"
        assert server.call("GET", "/jobs")["total"] == existing, f"dry_run ({how}) stored a job"

    # The name stays free: the same body creates the job for real afterwards.
    bad = professional_job(src, config.replace(f"TABLE: {table}", "TABLE: no_such_table"),
                           name=body["name"])
    resp = server.request("POST", "/jobs?dry_run=true", bad)
    assert resp.status_code == 200, resp.text
    dry = _check_answer(resp.json())
    assert dry["valid"] is False and any(e["code"] == "no_table" for e in dry["errors"]), dry
    assert server.call("GET", "/jobs")["total"] == existing
    assert _objects(pg, schema) == before, "validate / dry_run left objects in the schema"
    create_job(server, body)

    # A wizard body is validated the same way.
    wiz = wizard_job(src, pg, table, ["id", "name", "amount"], schema=schema)
    del wiz["name"]
    ans = _check_answer(server.call("POST", "/jobs/validate", wiz))
    assert ans["valid"] is True and ans["database_checked"] is True and ans["statements"], ans
    wiz["fields"].append({"source": "zzz", "dest": "no_such_column", "role": "none"})
    ans = _check_answer(server.call("POST", "/jobs/validate", wiz))
    assert ans["valid"] is False and any(e["code"] == "no_column" for e in ans["errors"]), ans


def test_validate_privileges(server, pg, kafka):
    """An account that may read the table but not insert into it: validate
    says so (code privilege)."""
    schema, table, topic, src = _setup(server, pg, kafka, "vpriv", "id integer, name text")
    role, password = unique("ro"), "Ro" + unique("pw")
    pg.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    try:
        pg.execute(f'GRANT CONNECT ON DATABASE "{pg.dbname}" TO "{role}"')
        pg.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        pg.execute(f'GRANT SELECT ON "{schema}"."{table}" TO "{role}"')
        d = job_dict(pg, kafka, topic, table, schema=schema,
                     value={"COLUMNS": cols(("id", "integer"), ("name", "text")),
                            "FORMAT": "delimited", "DELIMITED_OPTION": {"DELIMITER": "|"}})
        d["USER"], d["PASSWORD"] = role, password
        ans = _check_answer(server.call("POST", "/jobs/validate",
                                        professional_job(src, to_yaml(d))))
        assert ans["valid"] is False and ans["database_checked"] is True, ans
        assert any(e["code"] == "privilege" for e in ans["errors"]), ans
    finally:
        pg.execute(f'DROP OWNED BY "{role}"')
        pg.execute(f'DROP ROLE "{role}"')


def _masked(config):
    return yaml_unquote(yaml_value(config, "PASSWORD")) == "****"


def test_config_of_a_wizard_job_round_trips(server, pg, kafka):
    """GET /jobs/{id}/config of a wizard MERGE job: its effective YAML with the
    password masked.  With the password, table and group filled in, it is a
    professional job whose own config is the same YAML, and both jobs load."""
    schema, table, topic, src = _setup(server, pg, kafka, "cfg",
                                       "id integer PRIMARY KEY, val text, n bigint")
    table2 = pg.create_table(unique("t_cfg2"), "id integer PRIMARY KEY, val text, n bigint",
                             schema=schema)
    wiz = wizard_job(src, pg, table, ["id", "val", "n"], schema=schema, write_mode="MERGE")
    wiz["fields"][0]["role"] = "match"
    wiz["fields"][1]["role"] = "update"
    wiz["fields"][2]["role"] = "update"
    job = create_job(server, wiz)

    resp = server.request("GET", f"/jobs/{job['id']}/config")
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("Content-Type", "").split(";")[0].strip() == "application/yaml", \
        resp.headers
    config = resp.text
    assert pg.password not in config, "the password is in the config"
    assert _masked(config), f"PASSWORD is not masked:\n{config}"
    for key, want in (("DATABASE", pg.dbname), ("USER", pg.user), ("TOPIC", topic),
                      ("BROKERS", kafka.bootstrap), ("SCHEMA", schema), ("TABLE", table),
                      ("MODE", "MERGE"), ("FORMAT", "delimited"), ("group.id", wiz["group_name"]),
                      ("FALLBACK_OFFSET", "earliest"), ("PORT", str(pg.port))):
        got = yaml_unquote(yaml_value(config, key))
        assert got is not None and got.lower() == want.lower(), \
            f"{key}: {got!r}, expected {want!r}\n{config}"
    assert yaml_items(config, "MATCH_COLUMNS") == ["id"], config
    assert sorted(yaml_items(config, "UPDATE_COLUMNS")) == ["n", "val"], config

    group2 = unique("grp")
    lines = []
    for line in config.splitlines():
        key = line.strip().split(":", 1)[0]
        indent = line[:len(line) - len(line.lstrip())]
        if key == "PASSWORD":
            line = f"{indent}PASSWORD: {pg.password}"
        elif key == "TABLE":
            line = f"{indent}TABLE: {table2}"
        elif key == "group.id":
            line = f"{indent}group.id: {group2}"
        lines.append(line)
    config2 = "\n".join(lines) + "\n"
    job2 = create_job(server, professional_job(src, config2))
    resp = server.request("GET", f"/jobs/{job2['id']}/config")
    assert resp.status_code == 200, resp.text
    expect = config.replace(f"TABLE: {table}", f"TABLE: {table2}").replace(
        f"group.id: {wiz['group_name']}", f"group.id: {group2}")
    assert resp.text == expect, \
        f"the professional job's config is not the YAML it was given:\n{resp.text}\n---\n{expect}"
    assert resp.text == job2["config"], "GET /config differs from the job's config field"

    msgs = [f"{i}|v{i}|{i}" for i in range(10)] + [f"{i}|w{i}|{100 + i}" for i in range(5)]
    kafka.produce(topic, msgs)
    start_job(server, job["id"])
    start_job(server, job2["id"])
    expected = [(i, f"w{i}" if i < 5 else f"v{i}", 100 + i if i < 5 else i) for i in range(10)]
    for jid, t in ((job["id"], table), (job2["id"], table2)):
        wait_query(pg, f'SELECT id, val, n FROM "{schema}"."{t}" ORDER BY id', expected, server, jid)


def test_bad_yaml_reports_every_problem_with_path_and_line(server, pg, kafka):
    """Unknown keys and wrong types in one document: a 422 listing each of
    them with its path and line; the same problems from validate."""
    schema, table, topic, src = _setup(server, pg, kafka, "vbad", "id integer")
    d = job_dict(pg, kafka, topic, table, schema=schema,
                 value={"COLUMNS": cols(("id", "integer")), "FORMAT": "delimited",
                        "DELIMITED_OPTION": {"DELIMITER": "|"}},
                 commit={"MAX_ROW": "lots", "MINIMAL_INTERVAL": 500},
                 poll={"BATCHSIZE": 10, "TIMEOUT": [1, 2]})
    d["KAFKA"]["OUTPUT"]["TABLESPACE"] = "fast"  # no such key
    config = to_yaml(d)
    expect = {
        "KAFKA.OUTPUT.TABLESPACE": {yaml_line(config, "TABLESPACE:"), yaml_line(config, "OUTPUT:")},
        "KAFKA.COMMIT.MAX_ROW": {yaml_line(config, "MAX_ROW:"), yaml_line(config, "COMMIT:")},
        "KAFKA.POLL.TIMEOUT": {yaml_line(config, "TIMEOUT:"), yaml_line(config, "POLL:")},
    }
    err = error_of(server.request("POST", "/jobs", professional_job(src, config)), 422, "invalid")
    details = err.get("details") or []
    assert (details[0]["field"], details[0]["message"]) == (err["field"], err["message"]), err
    for path, lines in expect.items():
        hits = [x for x in details if x.get("field") == path]
        assert hits, f"no detail for {path}: {details}"
        assert hits[0].get("line") in lines, \
            f"{path} is on line(s) {sorted(lines)}: {hits[0]}"
        assert hits[0].get("message"), hits[0]
    assert server.call("GET", "/jobs")["total"] == 0

    ans = _check_answer(server.call("POST", "/jobs/validate", professional_job(src, config)))
    assert ans["valid"] is False, ans
    for path, lines in expect.items():
        hits = _errors_on(ans, path)
        assert hits and hits[0]["line"] in lines, f"validate: {path}: {ans['errors']}"


def test_property_that_breaks_delivery_is_refused(server, pg, kafka):
    """KAFKA.PROPERTIES enable.auto.commit=true would commit offsets before the
    rows are in the database: refused, naming the property."""
    schema, table, topic, src = _setup(server, pg, kafka, "vprop", "id integer")
    config = job_yaml(pg, kafka, topic, table, schema=schema,
                      value={"COLUMNS": cols(("id", "integer")), "FORMAT": "delimited",
                             "DELIMITED_OPTION": {"DELIMITER": "|"}},
                      properties={"enable.auto.commit": "true"})
    err = error_of(server.request("POST", "/jobs", professional_job(src, config)), 422, "invalid")
    hits = [x for x in err.get("details") or [err]
            if (x.get("field") or "").startswith("KAFKA.PROPERTIES")]
    assert hits and "enable.auto.commit" in (hits[0]["field"] + hits[0]["message"]), err


def _kafka_case(server, pg, kafka, src, topic, table, schema, *, brokers=None, topic_name=None,
                partitions=None):
    d = job_dict(pg, kafka, topic_name or topic, table, schema=schema, partitions=partitions,
                 value={"COLUMNS": cols(("id", "integer")), "FORMAT": "delimited",
                        "DELIMITED_OPTION": {"DELIMITER": "|"}})
    if brokers is not None:
        d["KAFKA"]["INPUT"]["SOURCE"]["BROKERS"] = brokers
    body = professional_job(src, to_yaml(d))
    resp = server.request("POST", "/jobs/validate", body, timeout=60)
    assert resp.status_code == 200, resp.text
    ans = _check_answer(resp.json())
    resp = server.request("POST", "/jobs?dry_run=true", body, timeout=60)
    assert resp.status_code == 200, resp.text
    dry = _check_answer(resp.json())
    assert (dry["valid"], [e["code"] for e in dry["errors"]]) == \
        (ans["valid"], [e["code"] for e in ans["errors"]]), f"dry run and validate differ:\n{dry}\n{ans}"
    return ans


def test_validate_asks_the_brokers(server, pg, kafka):
    """Validate (and a dry run) ask the brokers too: a topic of 3 partitions
    is reported with its count; brokers that do not answer, a topic that does
    not exist and a PARTITIONS entry the topic lacks each make the job invalid
    with the field to fix, while the database is still checked."""
    schema, table, topic, src = _setup(server, pg, kafka, "vkaf", "id integer", partitions=3)

    ans = _kafka_case(server, pg, kafka, src, topic, table, schema)
    assert ans["valid"] is True and ans["database_checked"] is True, ans
    assert ans["kafka"] == {"checked": True, "brokers": kafka.bootstrap, "topic": topic,
                            "partitions": 3, "partitions_read": 3}, ans

    ans = _kafka_case(server, pg, kafka, src, topic, table, schema, partitions=[0, 2])
    assert ans["valid"] is True and ans["kafka"]["partitions"] == 3, ans
    assert ans["kafka"]["partitions_read"] == 2, ans

    ans = _kafka_case(server, pg, kafka, src, topic, table, schema, partitions=[1, 7])
    assert ans["valid"] is False and ans["database_checked"] is True, ans
    [e] = ans["errors"]
    assert (e["field"], e["code"]) == ("KAFKA.INPUT.SOURCE.PARTITIONS", "no_partition"), ans
    assert "partition 7" in e["message"] and "3 partitions" in e["message"], e

    missing = unique("nosuchtopic")
    ans = _kafka_case(server, pg, kafka, src, topic, table, schema, topic_name=missing)
    assert ans["valid"] is False and ans["database_checked"] is True, ans
    [e] = ans["errors"]
    assert (e["field"], e["code"]) == ("KAFKA.INPUT.SOURCE.TOPIC", "no_topic"), ans
    assert missing in e["message"] and "create it" in e["message"], e
    assert ans["kafka"]["checked"] is False and ans["kafka"]["partitions"] is None, ans

    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    ans = _kafka_case(server, pg, kafka, src, topic, table, schema, brokers=dead)
    assert ans["valid"] is False and ans["database_checked"] is True, ans
    [e] = ans["errors"]
    assert (e["field"], e["code"]) == ("KAFKA.INPUT.SOURCE.BROKERS", "kafka_unreachable"), ans
    assert dead in e["message"], e
    assert ans["kafka"] == {"checked": False, "brokers": dead, "topic": topic, "partitions": None,
                            "partitions_read": None}, ans
    assert server.call("GET", "/jobs")["total"] == 0
