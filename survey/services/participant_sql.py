"""The participants' hot paths in plain SQL: the participant of every participant view,
:func:`survey.services.trials.trial_answer`'s reads and writes, the image view's row
(:func:`survey.participation.image_request`), the trial at hand of the participant's page
(:func:`survey.participation.current_trial`), and a start's statements
(:func:`survey.services.assignment.participant_start`: the study's link and its locked row,
the stimuli, the exposures, the trials in one ``INSERT``), which a launch's burst of starts
runs while every start waits on the study's lock.

Why plain SQL: every answer and image of every participant runs these statements, and
built by the ORM they cost several times more CPU to compile (``as_sql``, ``get_select``,
``add_q``) than the database takes to run them (bench/profile_participant_paths.py). Here
each is written from the models' ``_meta`` (tables, columns, the backend's quoting), its
parameters bound and prepared by the fields as the ORM prepares them, and rows come back
through the backend's and the fields' converters into whole instances, as the ORM would
build them (no deferred field: whatever code is handed one may read any field without a
query). The same statements run on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from weakref import WeakKeyDictionary

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

from survey.models import Participant, Stimulus, Study, Trial

#: Parameters in one statement of :func:`insert_many`: under SQLite's oldest limit (999).
MAX_PARAMETERS = 900

#: Per connection (each thread has its own), per model: (index, converters, column) of the
#: columns whose values the backend or the field converts (SQLite's datetimes and booleans).
_CONVERTERS: WeakKeyDictionary = WeakKeyDictionary()


def _connection():
    return connections[DEFAULT_DB_ALIAS]


def _names() -> Callable:
    """Names quoted by the backend: ``q(model)`` its table, ``q(model, field)`` a column
    (the statements are built once per backend, ``vendor`` the key of their cache)."""
    quote = _connection().ops.quote_name

    def q(model: type[Model], field: str | None = None) -> str:
        meta = model._meta
        if field is None:
            return quote(meta.db_table)
        return quote((meta.pk if field == "pk" else meta.get_field(field)).column)

    return q


def _columns(q: Callable, model: type[Model], alias: str) -> str:
    """The model's concrete columns under ``alias``, in field order (``from_db``'s)."""
    return ", ".join(f"{alias}.{q(model, f.name)}" for f in model._meta.concrete_fields)


def _converters(connection, model: type[Model]) -> list[tuple[int, list[Callable], object]]:
    by_model = _CONVERTERS.setdefault(connection, {})
    if model not in by_model:
        found = []
        for index, field in enumerate(model._meta.concrete_fields):
            column = field.get_col(model._meta.db_table)
            converters = connection.ops.get_db_converters(column) + column.get_db_converters(
                connection
            )
            if converters:
                found.append((index, converters, column))
        by_model[model] = found
    return by_model[model]


def _instance(connection, model: type[Model], values: Sequence) -> Model:
    """A whole instance from its concrete columns' values as the database returned them."""
    values = list(values)
    for index, converters, column in _converters(connection, model):
        for convert in converters:
            values[index] = convert(values[index], column, connection)
    return model.from_db(connection.alias, None, values)


@cache
def _postgresql() -> tuple[type, Callable, int, int]:
    """(the cursor class that prepares, Django's time-zone loader registration,
    timestamptz's oid, the text format): imported only where PostgreSQL is used."""
    from django.db.backends.postgresql.base import ServerBindingCursor
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg import adapters
    from psycopg.pq import Format

    class PreparedCursor(ServerBindingCursor):
        """psycopg's server-side binding cursor that asks for every statement to be
        prepared (psycopg keeps them per connection, least recently used dropped). One per
        connection, kept open for the next statement: ``close`` leaves it open (it is
        closed with its connection)."""

        def execute(self, query, params=None, *, prepare=True, binary=None):
            return super().execute(query, params, prepare=prepare, binary=binary)

        def _send_query_prepared(self, name, pgq, **kwargs):
            # What an unprepared execution records: Django's query log reads it.
            self._query = pgq
            return super()._send_query_prepared(name, pgq, **kwargs)

        def close(self):
            pass

    return PreparedCursor, register_tzloader, adapters.types["timestamptz"].oid, Format.TEXT


def _cursor(connection):
    """Django's cursor; on PostgreSQL, with what ``connection.cursor()`` does (health
    check, connection, thread check, the wrappers for errors and query logging), around
    the connection's cursor whose statements are prepared on the server.

    Why: every statement here runs on every answer or image, and PostgreSQL spent more CPU
    parsing and planning them (the image's five-table join: 0.26 ms) than running them
    (0.04 ms); prepared, a connection plans each once (generic plans after five runs,
    where they cost no more) and sends only the parameters. Django's own cursors bind
    client-side and never prepare; psycopg prepares only on a connection with a
    ``prepare_threshold`` (studyplatform.env.database_config sets one; None turns
    preparing off, e.g. behind a pooler that cannot keep prepared statements). The cursor
    is kept for the connection's next statement: making two cursors per statement
    (Django's, then this one) cost a sixth of a simple statement's CPU."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    cursor_class, register_tzloader, timestamptz, text = _postgresql()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    kept = getattr(connection, "_participant_sql_cursor", None)
    if kept is None or kept.connection is not raw:
        kept = connection._participant_sql_cursor = cursor_class(raw)
    # As Django's create_cursor: its time zone where the connection's loader has another.
    if kept.adapters.get_loader(timestamptz, text).timezone != connection.timezone:
        register_tzloader(connection.timezone, kept)
    if connection.queries_logged:
        return connection.make_debug_cursor(kept)
    return connection.make_cursor(kept)


def _run(connection, sql: str, params: Sequence, *, fetch: bool = False):
    """The rows (``fetch``), else the number of rows changed."""
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else cursor.rowcount


@cache
def _participant_sql(vendor: str) -> str:
    q = _names()
    return (
        f"SELECT {_columns(q, Participant, 'p')}, {_columns(q, Study, 's')} "
        f"FROM {q(Participant)} p INNER JOIN {q(Study)} s ON s.{q(Study, 'pk')} = "
        f"p.{q(Participant, 'study')} WHERE p.{q(Participant, 'public_id')} = %s"
    )


def participant_with_study(public_id: str) -> Participant | None:
    """The participant ``public_id`` with its study (as ``select_related("study")``)."""
    connection = _connection()
    rows = _run(connection, _participant_sql(connection.vendor), [public_id], fetch=True)
    if not rows:
        return None
    split = len(Participant._meta.concrete_fields)
    participant = _instance(connection, Participant, rows[0][:split])
    study = _instance(connection, Study, rows[0][split:])
    Participant._meta.get_field("study").set_cached_value(participant, study)
    return participant


@cache
def _locked_sql(vendor: str, lock: bool) -> str:
    q = _names()
    return (
        f"SELECT {q(Participant, 'completed_at')}, {q(Participant, 'withdrawn_at')} "
        f"FROM {q(Participant)} WHERE {q(Participant, 'pk')} = %s" + (" FOR UPDATE" if lock else "")
    )


def participant_locked(participant_id: int) -> tuple[bool, bool] | None:
    """(completed, withdrawn) of the participant, its row locked for the transaction (on
    SQLite the transaction itself holds the write lock: it begins IMMEDIATE)."""
    connection = _connection()
    sql = _locked_sql(connection.vendor, connection.features.has_select_for_update)
    rows = _run(connection, sql, [participant_id], fetch=True)
    if not rows:
        return None
    completed, withdrawn = rows[0]
    return completed is not None, withdrawn is not None


@cache
def _trials_sql(vendor: str) -> str:
    q = _names()
    answer, position = f"t.{q(Trial, 'answer')}", f"t.{q(Trial, 'position')}"
    return (
        f"SELECT {_columns(q, Trial, 't')}, {_columns(q, Stimulus, 'st')} "
        f"FROM {q(Trial)} t INNER JOIN {q(Stimulus)} st "
        f"ON st.{q(Stimulus, 'pk')} = t.{q(Trial, 'stimulus')} "
        f"WHERE t.{q(Trial, 'participant')} = %s AND ({answer} IS NULL OR {position} = %s) "
        f"ORDER BY {position} LIMIT 2"
    )


def trials_open_or_at(participant_id: int, position: int) -> list[Trial]:
    """The participant's trial at ``position`` and its first unanswered trials, in order of
    position, two at most, each with its stimulus (as ``select_related("stimulus")``)."""
    connection = _connection()
    rows = _run(connection, _trials_sql(connection.vendor), [participant_id, position], fetch=True)
    split = len(Trial._meta.concrete_fields)
    stimulus = Trial._meta.get_field("stimulus")
    trials = []
    for row in rows:
        trial = _instance(connection, Trial, row[:split])
        stimulus.set_cached_value(trial, _instance(connection, Stimulus, row[split:]))
        trials.append(trial)
    return trials


@cache
def _update_sql(vendor: str, model: type[Model], names: tuple, where_null: str | None) -> str:
    q = _names()
    sets = ", ".join(f"{q(model, name)} = %s" for name in names)
    sql = f"UPDATE {q(model)} SET {sets} WHERE {q(model, 'pk')} = %s"
    return sql + (f" AND {q(model, where_null)} IS NULL" if where_null else "")


def _prepared(connection, model: type[Model], values: dict) -> list:
    """``values`` (by field name) prepared by their fields, as the ORM saves them."""
    get_field = model._meta.get_field
    return [get_field(name).get_db_prep_save(v, connection) for name, v in values.items()]


def update(model: type[Model], pk: int, values: dict, *, where_null: str | None = None) -> int:
    """``UPDATE`` the row ``pk`` with ``values`` (by field name), only while the field
    ``where_null`` is NULL where given; the rows changed."""
    connection = _connection()
    sql = _update_sql(connection.vendor, model, tuple(values), where_null)
    return _run(connection, sql, [*_prepared(connection, model, values), pk])


@cache
def _insert_sql(vendor: str, model: type[Model], names: tuple) -> str:
    q = _names()
    columns = ", ".join(q(model, name) for name in names)
    return f"INSERT INTO {q(model)} ({columns}) VALUES ({', '.join(['%s'] * len(names))})"


def insert(model: type[Model], values: dict) -> None:
    """``INSERT`` one row: ``values`` by field name, every other field its default."""
    insert_many(model, [values])


@cache
def _image_sql(vendor: str) -> str:
    q = _names()
    return (
        f"SELECT p.{q(Participant, 'study')}, s.{q(Study, 'protocol')}, "
        f"CASE WHEN p.{q(Participant, 'withdrawn_at')} IS NULL"
        f" AND p.{q(Participant, 'released_at')} IS NULL THEN 0 ELSE 1 END, "
        f"CASE WHEN t.{q(Trial, 'answer')} IS NULL THEN 0 ELSE 1 END, "
        f"(SELECT COUNT(*) FROM {q(Trial)} b"
        f" WHERE b.{q(Trial, 'participant')} = t.{q(Trial, 'participant')}"
        f" AND b.{q(Trial, 'answer')} IS NULL"
        f" AND b.{q(Trial, 'position')} < t.{q(Trial, 'position')}), "
        f"t.{q(Trial, 'fake_side')}, f.{q(Stimulus, 'file')}, r.{q(Stimulus, 'file')}, "
        f"s.{q(Study, 'stimulus_bytes')} "
        f"FROM {q(Trial)} t "
        f"INNER JOIN {q(Participant)} p ON p.{q(Participant, 'pk')} = t.{q(Trial, 'participant')} "
        f"INNER JOIN {q(Study)} s ON s.{q(Study, 'pk')} = p.{q(Participant, 'study')} "
        f"INNER JOIN {q(Stimulus)} f ON f.{q(Stimulus, 'pk')} = t.{q(Trial, 'stimulus')} "
        f"LEFT OUTER JOIN {q(Stimulus)} r ON r.{q(Stimulus, 'pk')} = t.{q(Trial, 'partner')} "
        f"WHERE p.{q(Participant, 'public_id')} = %s AND t.{q(Trial, 'position')} = %s"
    )


def image_row(public_id: str, position: int) -> tuple | None:
    """The image view's row of the trial ``position`` of the participation ``public_id``:
    (study id, protocol, gone 0/1, answered 0/1, unanswered trials before it, fake side,
    stimulus file, partner file, the study's stimulus length), or None."""
    connection = _connection()
    rows = _run(connection, _image_sql(connection.vendor), [public_id, position], fetch=True)
    return rows[0] if rows else None


def insert_many(model: type[Model], rows: Sequence[dict]) -> None:
    """``INSERT`` the rows (each ``values`` by field name, the same names in every row;
    every other field its default) in as few statements as the backend's parameter limit
    allows: a start's trials, one statement instead of the ORM's ``bulk_create``. A field
    left out whose default is None (and has no database default) is left out of the
    statement too: its column, nullable, is NULL all the same."""
    connection = _connection()
    for sql, params in _inserts(connection, model, rows):
        _run(connection, sql, params)


def _inserts(connection, model: type[Model], rows: Sequence[dict]) -> list[tuple[str, list]]:
    """:func:`insert_many`'s statements and their parameters."""
    if not rows:
        return []
    given = tuple(rows[0])
    constant = {
        f.name: f.get_default()
        for f in model._meta.concrete_fields
        if not f.primary_key and f.name not in given
    }
    constant = {
        name: value
        for name, value in constant.items()
        if value is not None or model._meta.get_field(name).has_db_default()
    }
    fixed = _prepared(connection, model, constant)
    names = given + tuple(constant)
    one = f"({', '.join(['%s'] * len(names))})"
    batch = max(1, MAX_PARAMETERS // len(names))
    head = _insert_sql(connection.vendor, model, names).rsplit(" VALUES ", 1)[0]
    get_field = model._meta.get_field
    preps = [get_field(name).get_db_prep_save for name in given]
    statements = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        params = []
        for row in chunk:
            params += [prep(row[name], connection) for prep, name in zip(preps, given)]
            params += fixed
        statements.append((f"{head} VALUES {', '.join([one] * len(chunk))}", params))
    return statements


def _writes_together(connection) -> bool:
    """Whether the backend runs data-modifying ``WITH`` queries (SQLite does not)."""
    return connection.vendor == "postgresql"


class Writes:
    """Writes sent together: on PostgreSQL as one statement (every write but the last a
    data-modifying ``WITH`` query: one round trip, one prepared statement, instead of one
    each), on SQLite one after the other. An answer's four writes (the answer, its
    display, the next trial shown, the participant's progress) go this way.

    They run as one: no write may depend on another's effect. PostgreSQL runs them all on
    one snapshot (none sees another's rows) and cannot change one row twice in one
    statement: rows of different keys only, or inserts beside them."""

    def __init__(self):
        self._statements: list[tuple[str, list]] = []

    def update(
        self, model: type[Model], pk: int, values: dict, *, where_null: str | None = None
    ) -> None:
        """As :func:`update`, when sent."""
        connection = _connection()
        sql = _update_sql(connection.vendor, model, tuple(values), where_null)
        self._statements.append((sql, [*_prepared(connection, model, values), pk]))

    def insert(self, model: type[Model], values: dict) -> None:
        """As :func:`insert`, when sent."""
        self._statements += _inserts(_connection(), model, [values])

    def send(self) -> None:
        """Run the writes gathered since the last send."""
        statements, self._statements = self._statements, []
        connection = _connection()
        if not _writes_together(connection) or len(statements) < 2:
            for sql, params in statements:
                _run(connection, sql, params)
            return
        *first, (last, _) = statements
        queries = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(first))
        _run(connection, f"WITH {queries} {last}", [p for _, ps in statements for p in ps])


@cache
def _add_sql(vendor: str, model: type[Model], field: str, n: int) -> str:
    q = _names()
    column = q(model, field)
    return (
        f"UPDATE {q(model)} SET {column} = {column} + %s "
        f"WHERE {q(model, 'pk')} IN ({', '.join(['%s'] * n)})"
    )


def add(model: type[Model], field: str, pks: Sequence[int], amount: int) -> int:
    """``field = field + amount`` on the rows ``pks`` (each changed once, whatever its
    repeats); the rows changed."""
    pks = sorted(set(pks))
    if not pks:
        return 0
    connection = _connection()
    return _run(connection, _add_sql(connection.vendor, model, field, len(pks)), [amount, *pks])


@cache
def _silent_sql(vendor: str) -> str:
    q = _names()
    return (
        f"SELECT 1 FROM {q(Participant)} WHERE {q(Participant, 'study')} = %s"
        f" AND {q(Participant, 'withdrawn_at')} IS NULL AND {q(Participant, 'returned_at')} IS NULL"
        f" AND {q(Participant, 'released_at')} IS NULL AND {q(Participant, 'completed_at')} IS NULL"
        f" AND {q(Participant, 'last_active_at')} < %s LIMIT 1"
    )


def any_silent(study_id: int, before) -> bool:
    """Whether the study has a participant :func:`survey.services.places.places_release`
    would release: present, unfinished, last heard from before ``before``."""
    connection = _connection()
    field = Participant._meta.get_field("last_active_at")
    params = [study_id, field.get_db_prep_value(before, connection)]
    return bool(_run(connection, _silent_sql(connection.vendor), params, fetch=True))


@cache
def _pid_sql(vendor: str) -> str:
    q = _names()
    return (
        f"SELECT {_columns(q, Participant, 'p')} FROM {q(Participant)} p "
        f"WHERE p.{q(Participant, 'study')} = %s AND p.{q(Participant, 'prolific_pid')} = %s"
    )


def participant_by_pid(study_id: int, prolific_pid: str) -> Participant | None:
    """The study's participant with this PROLIFIC_PID (one at most: a constraint)."""
    connection = _connection()
    rows = _run(connection, _pid_sql(connection.vendor), [study_id, prolific_pid], fetch=True)
    return _instance(connection, Participant, rows[0]) if rows else None


@cache
def _current_sql(vendor: str) -> str:
    q = _names()
    answer = q(Trial, "answer")
    names = (
        "pk",
        "position",
        "kind",
        "shown_at",
        "answer",
        "instructed_answer",
        "instructed_rating",
        "fake_side",
        "exposure_ms",
    )
    return (
        f"SELECT {', '.join(q(Trial, name) for name in names)}, "
        f"COUNT(*) OVER (), COUNT({answer}) OVER () FROM {q(Trial)} "
        f"WHERE {q(Trial, 'participant')} = %s "
        f"ORDER BY CASE WHEN {answer} IS NULL THEN 0 ELSE 1 END, {q(Trial, 'position')} LIMIT 1"
    )


def trial_at_hand(participant_id: int) -> dict | None:
    """The participant's first unanswered trial (or, every trial answered, one answered
    trial) with the counts of all and of answered trials (window counts, taken before the
    LIMIT): pk, position, kind, shown (bool), answer, instructed_answer,
    instructed_rating, fake_side, exposure_ms, total, answered; None without trials."""
    connection = _connection()
    rows = _run(connection, _current_sql(connection.vendor), [participant_id], fetch=True)
    if not rows:
        return None
    pk, position, kind, shown_at, answer, instructed, score, side, exposure, total, answered = rows[
        0
    ]
    return {
        "pk": pk,
        "position": position,
        "kind": kind,
        "shown": shown_at is not None,
        "answer": answer,
        "instructed_answer": instructed,
        "instructed_rating": score,
        "fake_side": side,
        "exposure_ms": exposure,
        "total": total,
        "answered": answered,
    }


@cache
def _study_sql(vendor: str, by: str, lock: bool) -> str:
    q = _names()
    sql = f"SELECT {_columns(q, Study, 's')} FROM {q(Study)} s WHERE s.{q(Study, by)} = %s"
    return sql + (" FOR UPDATE" if lock else "")


def _study(by: str, value, lock: bool = False) -> Study | None:
    connection = _connection()
    lock = lock and connection.features.has_select_for_update
    rows = _run(connection, _study_sql(connection.vendor, by, lock), [value], fetch=True)
    return _instance(connection, Study, rows[0]) if rows else None


def study_by_slug(slug: str) -> Study | None:
    """The study of the link ``slug`` (every landing and start reads it)."""
    return _study("slug", slug)


def study_locked(pk: int) -> Study:
    """The study, its row locked for the transaction (``select_for_update``): the lock that
    serialises the starts (on SQLite the transaction's own write lock does)."""
    study = _study("pk", pk, lock=True)
    if study is None:
        raise Study.DoesNotExist(f"no study {pk}")
    return study


@cache
def _stimuli_sql(vendor: str, by: str, role_is: bool) -> str:
    q = _names()
    role = f"st.{q(Stimulus, 'role')} {'=' if role_is else '<>'} %s"
    return (
        f"SELECT {_columns(q, Stimulus, 'st')} FROM {q(Stimulus)} st "
        f"WHERE st.{q(Stimulus, by)} = %s AND {role} ORDER BY st.{q(Stimulus, 'pk')}"
    )


def stimuli(*, role: str, study: int | None = None, condition: int | None = None, other=False):
    """The stimuli of the study (or of the condition) of ``role`` (with ``other``: of any
    role but ``role``), as whole instances: a start reads them, the main ones under the
    study's lock."""
    by, value = ("condition", condition) if condition is not None else ("study", study)
    connection = _connection()
    sql = _stimuli_sql(connection.vendor, by, not other)
    rows = _run(connection, sql, [value, role], fetch=True)
    return [_instance(connection, Stimulus, row) for row in rows]
