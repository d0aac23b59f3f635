"""Bulk INSERT of model instances in one statement, without the ORM's per-object machinery.

Why: on the on-sale hot path the group commit inserts dozens of holds, items and audit entries
per transaction, and ``QuerySet.bulk_create`` spends most of its time compiling: per object and
per field it resolves, converts and quotes a value, then renders one placeholder per value. On
PostgreSQL the same rows go in as one array per column (``INSERT … SELECT * FROM unnest(…)
RETURNING id``): a statement text that never changes (cached per model and column list) and
one parameter per column whatever the number of rows.

Values still pass through each field's ``get_db_prep_save`` (the conversion bulk_create does),
so what is stored is what the ORM would store. Other databases, and any model with something
this does not handle, use ``bulk_create``: behaviour stays the same everywhere.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

from django.db import connections, models, router

_SKIP = object()


@functools.cache
def _plan(model: type[models.Model], vendor_alias: str) -> tuple | None:
    """(SQL, [(field, array type, json?)]) for ``model`` on that connection, or None if it has
    a field this helper does not convert like the ORM (then bulk_create is used)."""
    connection = connections[vendor_alias]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    pk = model._meta.pk
    if not isinstance(pk, models.AutoField | models.BigAutoField):
        return None
    columns, selects, plan = [], [], []
    for i, field in enumerate(fields):
        if field.db_returning or field.generated:
            return None
        db_type = field.db_type(connection)
        if db_type is None:
            return None
        is_json = isinstance(field, models.JSONField)
        if is_json:
            # Arrays of jsonb adapt poorly; JSON text arrays cast per element instead.
            selects.append(f"c{i}::jsonb")
            array_type = "text[]"
        else:
            selects.append(f"c{i}")
            array_type = f"{db_type}[]"
        columns.append(connection.ops.quote_name(field.column))
        plan.append((field, array_type, is_json))
    table = connection.ops.quote_name(model._meta.db_table)
    unnest = ", ".join(f"%s::{array_type}" for _f, array_type, _j in plan)
    names = ", ".join(f"c{i}" for i in range(len(plan)))
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - names from metadata
           f"SELECT {', '.join(selects)} FROM unnest({unnest}) AS t({names}) "
           f"RETURNING {connection.ops.quote_name(pk.column)}")
    return sql, plan


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
    params = []
    for field, _array_type, is_json in fields:
        attname = field.attname
        if is_json:
            column = [None if (v := getattr(o, attname)) is None and field.null
                      else json.dumps(v, cls=field.encoder) for o in objs]
        else:
            prep = field.get_db_prep_save
            column = [prep(field.pre_save(o, True), connection) for o in objs]
        params.append(column)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = cursor.fetchall()
    # unnest keeps the arrays' order and RETURNING follows the inserted rows' order.
    for obj, (pk,) in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = alias
    return list(objs)
