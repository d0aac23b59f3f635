"""Bulk INSERT of model instances in one statement, without the ORM's per-object machinery.

Why: on the on-sale hot path the group commit inserts dozens of holds, items and audit entries
per transaction, and ``QuerySet.bulk_create`` spends most of its time compiling and quoting,
per object and per field. On PostgreSQL the rows go in as ONE JSON parameter
(``INSERT … SELECT … FROM jsonb_to_recordset(%s) … RETURNING id``): a statement text that never
changes (cached per model), a parameter the C JSON encoder builds, and no per-value quoting in
Python (Django's psycopg cursors bind client-side: arrays were quoted element by element).
Measured in one thread on PostgreSQL: holds + items + audit entries 0.21 ms per hold, against
0.33 ms through bulk_create and 0.25 ms with one array parameter per column.

Values still pass through each field's ``get_db_prep_save`` (the conversion bulk_create does)
and PostgreSQL reads them with each column's own input function, so what is stored is what
the ORM would store (a test compares them). Other databases, and any row with a value this
does not carry (bytes, a NULL JSON value), use ``bulk_create``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from uuid import UUID

from django.db import connections, models, router


@functools.cache
def _plan(model: type[models.Model], alias: str) -> tuple | None:
    """(SQL, fields) for ``model`` on that connection, or None if it has a field this helper
    does not convert like the ORM (then bulk_create is used)."""
    connection = connections[alias]
    pk = model._meta.pk
    if not isinstance(pk, models.AutoField | models.BigAutoField):
        return None
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns, record = [], []
    for i, field in enumerate(fields):
        db_type = field.db_type(connection)
        if field.db_returning or field.generated or db_type is None:
            return None
        columns.append(connection.ops.quote_name(field.column))
        record.append(f"c{i} {db_type}")
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(f"c{i}" for i in range(len(fields)))
    # WITH ORDINALITY + ORDER BY: rows are inserted, and ids drawn, in the list's order.
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - names from metadata
           f"SELECT {names} FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) "
           f"AS ({', '.join(record)})) WITH ORDINALITY AS t({names}, n) ORDER BY n "
           f"RETURNING {connection.ops.quote_name(pk.column)}")
    return sql, fields


def _json_value(value):
    """A prepared database value as JSON: PostgreSQL reads dates, times and decimals back
    from their ISO / decimal text with each column's own input function."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID | ipaddress._BaseAddress | ipaddress._BaseNetwork):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def insert(objs: Sequence[models.Model]) -> list[models.Model]:
    """Insert unsaved ``objs`` (all of one model, no primary key set) and set their primary
    keys, like ``Model.objects.bulk_create(objs)``. Returns ``objs``."""
    if not objs:
        return list(objs)
    model = type(objs[0])
    alias = router.db_for_write(model)
    connection = connections[alias]
    plan = _plan(model, alias) if connection.vendor == "postgresql" else None
    if plan is None or any(type(o) is not model or o.pk is not None for o in objs):
        return model.objects.bulk_create(objs)
    sql, fields = plan
    rows = []
    for obj in objs:
        row = {}
        for i, field in enumerate(fields):
            if isinstance(field, models.JSONField):
                value = getattr(obj, field.attname)
                if value is None:  # SQL NULL or JSON null: bulk_create knows which
                    return model.objects.bulk_create(objs)
                # Through the field's own encoder, as the ORM sends it.
                row[f"c{i}"] = json.loads(json.dumps(value, cls=field.encoder))
            else:
                row[f"c{i}"] = field.get_db_prep_save(field.pre_save(obj, True), connection)
        rows.append(row)
    try:
        payload = json.dumps(rows, default=_json_value, ensure_ascii=False)
    except TypeError:  # a value JSON cannot carry (bytes…): the ORM's way
        return model.objects.bulk_create(objs)
    with connection.cursor() as cursor:
        cursor.execute(sql, [payload])
        ids = cursor.fetchall()
    for obj, (pk,) in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = alias
    return list(objs)
