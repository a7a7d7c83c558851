"""Publishing into PostgreSQL (issue 14): each version in a schema of its own, made current
in the same transaction that built it, with row-level security from the access file.

A night whose warehouse is PostgreSQL publishes twice from the same staged DuckDB file:
the published folder (``cxkpi.publish``: the DuckDB file, Parquet, scoped extracts and
reports, versioned and checksummed) and then the server. One transaction:

1. copies every published table and ``publish_log`` into the schema ``<cx>_v<version>``,
   indexes the columns the dbt tests hold unique and the columns scopes filter by, and
   runs ``ANALYZE`` on each table (the planner has statistics before the first query);
2. makes the scope roles and policies (below) and grants the reader role the new tables;
3. renames the current ``<cx>`` to ``<cx>_v<its version>`` and the new schema to ``<cx>``,
   then drops the kept schemas beyond ``keep_versions``.

PostgreSQL's DDL is transactional: a reader sees the old schema or the new one, never a
mix, and a publish killed at any point before its commit leaves nothing behind - the
server rolls the whole transaction back. The folder is committed first (its history gives
the version numbers); a kill between the two commits leaves the server one version
behind, which the next publish or rollback puts right (``sync``).

Row-level security. Every org unit with a scope gets a role ``<prefix>scope_<unit>``; every
name of the access file's grants (a person, ``group:<name>``) a role ``<prefix><name>``
that is a member of the scope roles of its units. A DBA grants those roles to login roles.
The table ``scope_units`` lists, per scope role, the units of its subtree, the ancestors
whose aggregates it sees, and whether it sees company-wide rows; each published table's
policy is its scope rule (``cxkpi.scopes``) over the scope roles the reader is a member of,
so a BI connection sees what the scope's extract holds, and a person with two scopes the
union of both. The owner (the account publishing) is not subject to the policies.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from cxkpi.access import Access
from cxkpi.config import Settings
from cxkpi.errors import PublishError
from cxkpi.postgres import copy_tables
from cxkpi.scopes import UNSCOPED, Scope, TableRule, plan_scopes, table_rules
from cxkpi.warehouse import PostgresTarget, connect, quote_ident

log = logging.getLogger(__name__)

SCOPE_UNITS = "scope_units"
_ROLE_BYTES = 63  # PostgreSQL truncates longer names: two long names could then collide


def role_name(prefix: str, name: str) -> str:
    """A PostgreSQL role name for ``name``: itself after the prefix, or, when that is
    longer than a role name can be, shortened with a hash of the whole name."""
    full = prefix + name
    if len(full.encode()) <= _ROLE_BYTES:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    kept = full.encode()[: _ROLE_BYTES - 11].decode(errors="ignore")
    return f"{kept}~{digest}"


def reader_role(server: PostgresTarget) -> str:
    return role_name(server.role_prefix, "reader")


def scope_role(server: PostgresTarget, unit: str) -> str:
    return role_name(server.role_prefix, f"scope_{unit}")


def version_schema(server: PostgresTarget, version: int) -> str:
    return f"{server.published_schema}_v{version:06d}"


def current_version(cur, server: PostgresTarget) -> int | None:
    """The version the published schema holds (None: nothing published there yet)."""
    cur.execute(
        "select 1 from information_schema.tables where table_schema = %s "
        "and table_name = 'publish_log'",
        [server.published_schema],
    )
    if cur.fetchone() is None:
        return None
    cur.execute(f"select max(version) from {quote_ident(server.published_schema)}.publish_log")
    found = cur.fetchone()
    return None if found is None or found[0] is None else int(found[0])


def _policy(rule: TableRule, schema: str) -> str:
    """The row filter of a published table: its scope rule over the caller's scope roles."""
    units = quote_ident(schema) + "." + SCOPE_UNITS

    def visible(relation: str) -> str:
        return (
            f"select u.unit_id from {units} u where u.relation = '{relation}' "
            "and pg_has_role(u.scope_role, 'member')"
        )

    if rule.rows == "reference":
        return "true"
    if rule.rows == "company":
        return (
            f"exists (select 1 from {units} u where u.relation = 'company' "
            "and pg_has_role(u.scope_role, 'member'))"
        )
    column = quote_ident(rule.column or "")
    if rule.rows == "unit_records":
        return f"{column} in ({visible('subtree')})"
    if rule.rows == "unit_values":
        ancestors = f" and ({rule.ancestors_where})" if rule.ancestors_where else ""
        return (
            f"{column} in ({visible('subtree')}) or "
            f"({column} in ({visible('aggregate')}){ancestors})"
        )
    # follows: the rows of the followed table the caller sees (its own policy applies)
    parent = f"{quote_ident(schema)}.{quote_ident(rule.parent or '')}"
    return f"{column} in (select {column} from {parent})"


def _scope_rows(server: PostgresTarget, scopes: list[Scope]) -> list[tuple[str, str, str]]:
    rows = []
    for scope in scopes:
        role = scope_role(server, scope.unit)
        rows += [(role, unit, "subtree") for unit in scope.subtree]
        rows += [(role, unit, "aggregate") for unit in scope.aggregates]
        if scope.sees_company:
            rows.append((role, scope.unit, "company"))
    return rows


def _ensure_role(cur, role: str, member_of: str | None = None) -> None:
    cur.execute("select 1 from pg_roles where rolname = %s", [role])
    if cur.fetchone() is None:
        cur.execute(f"create role {quote_ident(role)} nologin")
    if member_of is not None:
        cur.execute(f"grant {quote_ident(member_of)} to {quote_ident(role)}")


def roles_owner(server: PostgresTarget) -> str:
    """The comment on a project's reader role that says whose roles they are: roles are
    shared by every database of a server, so two projects with one role_prefix would each
    revoke the other's memberships (a BI login would silently lose its rows)."""
    return f"cxkpi roles of {server.database}.{server.published_schema}"


def check_roles(cur, server: PostgresTarget, claim: bool = False) -> None:
    """Refuse a role prefix whose roles another project (database and schema) owns;
    with ``claim``, mark unowned roles this project's."""
    reader = reader_role(server)
    cur.execute(
        "select shobj_description(oid, 'pg_authid') from pg_roles where rolname = %s", [reader]
    )
    found = cur.fetchone()
    owner = roles_owner(server)
    if found is not None and found[0] and found[0] != owner:
        raise PublishError(
            f"role {reader} on {server.host}:{server.port} is one of the {found[0]}; this "
            f"project publishes {server.database}.{server.published_schema}: give it its own "
            f"warehouse.role_prefix in cxkpi.yml (now {server.role_prefix!r}), or its "
            "publishes would revoke that project's grants"
        )
    if claim and (found is None or found[0] != owner):
        _ensure_role(cur, reader)
        cur.execute(f"comment on role {quote_ident(reader)} is %s", [owner])


def _sync_roles(cur, server: PostgresTarget, access: Access, scopes: list[Scope]) -> list[str]:
    """The scope and grantee roles of the access file, memberships as it says: a grant
    removed from the file is revoked (only between cxkpi's own roles: a DBA's grants of
    them to login roles stay). Returns problems (units of grants with no scope)."""
    reader = reader_role(server)
    check_roles(cur, server, claim=True)
    by_unit = {s.unit: scope_role(server, s.unit) for s in scopes}
    for role in by_unit.values():
        _ensure_role(cur, role, member_of=reader)
    wanted: dict[str, set[str]] = {}
    problems = []
    for grant in access.grants:
        for who in grant.who:
            grantee = role_name(server.role_prefix, who)
            for unit in grant.units:
                if unit in by_unit:
                    wanted.setdefault(grantee, set()).add(by_unit[unit])
                else:
                    problems.append(f"{grant.declared_in}: unit {unit} has no scope")
    for grantee, roles in sorted(wanted.items()):
        _ensure_role(cur, grantee)
        for role in sorted(roles):
            cur.execute(f"grant {quote_ident(role)} to {quote_ident(grantee)}")
    # memberships in scope roles that the access file no longer gives
    cur.execute(
        """select g.rolname, m.rolname from pg_auth_members a
           join pg_roles g on g.oid = a.roleid join pg_roles m on m.oid = a.member
           where starts_with(g.rolname, %s) and starts_with(m.rolname, %s)
             and g.rolname <> %s""",
        [role_name(server.role_prefix, "scope_"), server.role_prefix, reader],
    )
    for granted, member in cur.fetchall():
        if granted not in wanted.get(member, set()) and member != reader:
            cur.execute(f"revoke {quote_ident(granted)} from {quote_ident(member)}")
    return problems


def _index(cur, schema: str, table: str, columns: list[str], unique: bool, number: int) -> None:
    name = quote_ident(f"{table[:40]}_{'key' if unique else 'ix'}{number}")
    cur.execute(
        f"create {'unique ' if unique else ''}index {name} on "
        f"{quote_ident(schema)}.{quote_ident(table)} ({', '.join(map(quote_ident, columns))})"
    )


def publish_version(
    settings: Settings,
    database: Path,
    models: list[dict],
    access: Access,
) -> dict[str, Any]:
    """Publish a version's DuckDB file ``database`` (its published tables and
    publish_log) into the server, current when this returns."""
    server = settings.postgres
    if server is None:
        raise PublishError("the warehouse is not PostgreSQL: nothing to publish there")
    source = connect(database, read_only=True)
    try:
        (version,) = source.execute("select max(version) from publish_log").fetchone() or (0,)
        scopes = plan_scopes(source, access, settings.org_levels)
        tables = [m["name"] for m in models]
        pg = server.connect()
        try:
            with pg.cursor() as cur:
                schema = version_schema(server, version)
                cur.execute(f"drop schema if exists {quote_ident(schema)} cascade")
                copied = copy_tables(
                    source, pg, [("main", t) for t in [*tables, "publish_log"]], schema
                )
                _secure(cur, server, schema, models, access, scopes)
                for table in [*tables, "publish_log", SCOPE_UNITS]:
                    cur.execute(f"analyze {quote_ident(schema)}.{quote_ident(table)}")
                previous = _switch(cur, server, schema)
                pruned = _prune(cur, server, settings.keep_versions, version)
            pg.commit()
        except BaseException:
            pg.rollback()
            raise
        finally:
            pg.close()
    finally:
        source.close()
    log.info(
        "published version %s into %s schema %s (was %s); dropped %s",
        version,
        server.describe(),
        server.published_schema,
        previous,
        pruned,
    )
    return {"version": version, "previous": previous, "rows": copied, "pruned": pruned}


def _secure(cur, server, schema: str, models: list[dict], access: Access, scopes) -> None:
    """Indexes, the scope_units table, policies and grants of a version's schema."""
    rules = table_rules(models)
    cur.execute(
        f"create table {quote_ident(schema)}.{SCOPE_UNITS} "
        "(scope_role text not null, unit_id text not null, relation text not null)"
    )
    rows = _scope_rows(server, scopes)
    if rows:
        values = ", ".join(cur.mogrify("(%s, %s, %s)", row).decode() for row in rows)
        cur.execute(f"insert into {quote_ident(schema)}.{SCOPE_UNITS} values {values}")
    _index(cur, schema, SCOPE_UNITS, ["scope_role", "relation"], False, 1)
    for problem in _sync_roles(cur, server, access, scopes):
        log.warning("access file: %s", problem)
    reader = quote_ident(reader_role(server))
    # scope_units: each reader sees the rows of its own scope roles
    own = "pg_has_role(scope_role, 'member')"
    policies = {
        SCOPE_UNITS: own,
        "publish_log": _policy(TableRule("publish_log", "company"), schema),
    }
    for model in models:
        if model["name"] not in UNSCOPED:
            policies[model["name"]] = _policy(rules[model["name"]], schema)
        for number, key in enumerate(model.get("keys", []), start=1):
            _index(cur, schema, model["name"], key, True, number)
        rule = rules.get(model["name"])
        if rule is not None and rule.column and rule.rows != "follows":
            _index(cur, schema, model["name"], [rule.column], False, 0)
    for table, condition in policies.items():
        name = f"{quote_ident(schema)}.{quote_ident(table)}"
        cur.execute(f"alter table {name} enable row level security")
        cur.execute(f"create policy scope_rows on {name} for select to public using ({condition})")
    cur.execute(f"grant usage on schema {quote_ident(schema)} to {reader}")
    cur.execute(f"grant select on all tables in schema {quote_ident(schema)} to {reader}")


def _switch(cur, server: PostgresTarget, schema: str) -> int | None:
    """Rename the current published schema to its version's name and ``schema`` to the
    published name: the commit of this transaction is the switch for every reader."""
    published = quote_ident(server.published_schema)
    previous = current_version(cur, server)
    if previous is not None:
        kept = version_schema(server, previous)
        cur.execute(f"drop schema if exists {quote_ident(kept)} cascade")
        cur.execute(f"alter schema {published} rename to {quote_ident(kept)}")
        # BI connections read the published schema; kept versions are for rollback
        cur.execute(
            f"revoke usage on schema {quote_ident(kept)} from {quote_ident(reader_role(server))}"
        )
    else:
        cur.execute(f"drop schema if exists {published} cascade")
    cur.execute(f"alter schema {quote_ident(schema)} rename to {published}")
    return previous


def _prune(cur, server: PostgresTarget, keep: int, current: int) -> list[int]:
    """Drop the version schemas beyond the ``keep`` newest (the current one counts)."""
    prefix = f"{server.published_schema}_v"
    cur.execute(
        "select schema_name from information_schema.schemata where starts_with(schema_name, %s)",
        [prefix],
    )
    versions = sorted(
        int(name[len(prefix) :])
        for (name,) in cur.fetchall()
        if name[len(prefix) :].isdigit() and int(name[len(prefix) :]) != current
    )
    dropped = versions[: max(len(versions) - max(keep - 1, 0), 0)]
    for version in dropped:
        cur.execute(f"drop schema {quote_ident(version_schema(server, version))} cascade")
    return dropped


def sync(settings: Settings, archived: Path | None, models: list[dict], access: Access):
    """The first step of a publish or rollback into the server, before the folder
    changes: refuse roles another project owns (``check_roles``); then publish the
    folder's current version (its archived DuckDB file ``archived``; None: nothing
    published yet) if the server holds another one (a kill between the folder's commit
    and the server's). Returns the version published, or None."""
    server = settings.postgres
    if server is None:
        return None
    pg = server.connect()
    try:
        with pg.cursor() as cur:
            check_roles(cur, server)
            served = current_version(cur, server)
    finally:
        pg.close()
    if archived is None or not archived.exists():
        return None
    source = connect(archived, read_only=True)
    try:
        (folder_version,) = source.execute("select max(version) from publish_log").fetchone() or (
            None,
        )
    finally:
        source.close()
    if served == folder_version:
        return None
    log.warning(
        "the server holds published version %s, the folder %s: publishing %s into %s",
        served,
        folder_version,
        folder_version,
        server.describe(),
    )
    publish_version(settings, archived, models, access)
    return folder_version
