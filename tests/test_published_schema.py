"""The published schema: `inventory schema` prints it, the committed
schema.graphql matches it, and the code makes no breaking change against the
committed copy that the deprecation rule does not allow."""
from __future__ import annotations

import datetime as dt
import warnings

from graphql import build_ast_schema, parse

from inventory.resolvers.root import sdl
from inventory.schema import published

from .support import ROOT, run_cli

TODAY = dt.date(2027, 6, 1)
BASE = '''
type Query {
  item(sku: String!, warehouse: String @deprecated(reason: "Use locationCode. Removal after 2027-01-31.")): Item
  legacy: Legacy @deprecated(reason: "Use item. Removal after 2027-05-31.")
  soon: Int @deprecated(reason: "Use item. Removal after 2027-12-31.")
  undated: Int @deprecated
  kept: Int
}
type Item { sku: String! state: State }
type Legacy { name: String }
enum State { OK OLD @deprecated(reason: "Removal after 2026-12-31.") }
'''


def _without(sdl: str, *lines: str) -> str:
    for line in lines:
        assert line in sdl
        sdl = sdl.replace(line, "")
    return sdl


def test_schema_command_prints_the_schema_the_server_builds():
    result = run_cli("schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == sdl()
    schema = build_ast_schema(parse(result.stdout))
    assert {"stockLevel", "items"} <= set(schema.query_type.fields)
    assert "reserveStock" in schema.mutation_type.fields


def test_committed_schema_matches_the_code():
    committed, current = published.read_published(ROOT), sdl()
    if committed != current:
        changes = published.compare(committed, current).report() or "  (descriptions or order)"
        raise AssertionError(
            f"{published.SCHEMA_FILE} differs from the schema the code builds:\n{changes}\n"
            f"If the change is intended, regenerate it at the repository root with\n"
            f"    {published.REGENERATE}\nand commit it.")


def test_no_unintended_breaking_change_against_the_committed_schema():
    comparison = published.compare(published.read_published(ROOT), sdl())
    for change in comparison.dangerous:
        warnings.warn(f"dangerous schema change: {change.description}", stacklevel=1)
    assert not comparison.unintended, (
        f"breaking changes against the published {published.SCHEMA_FILE}:\n"
        f"{comparison.report()}\nClients still use what is published: keep the old field, "
        "argument or value and deprecate it with a removal date (README, 'Schema changes "
        "and deprecation'); it may go once that date has passed.")


def test_a_due_deprecation_may_be_removed_with_what_only_it_reached():
    current = _without(BASE, '  legacy: Legacy @deprecated(reason: "Use item. Removal after '
                             '2027-05-31.")\n', "type Legacy { name: String }\n",
                       ', warehouse: String @deprecated(reason: "Use locationCode. Removal '
                       'after 2027-01-31.")', ' OLD @deprecated(reason: "Removal after '
                       '2026-12-31.")')
    comparison = published.compare(BASE, current, today=TODAY)
    assert comparison.unintended == []
    removed = " ".join(c.description for c in comparison.removals)
    for name in ("legacy", "Legacy", "warehouse", "OLD"):
        assert name in removed


def test_removals_before_their_date_or_without_one_are_breaking():
    for line in ('  soon: Int @deprecated(reason: "Use item. Removal after 2027-12-31.")\n',
                 "  undated: Int @deprecated\n", "  kept: Int\n"):
        comparison = published.compare(BASE, _without(BASE, line), today=TODAY)
        field = line.split(":")[0].strip()
        assert [field in c.description for c in comparison.unintended] == [True], line
        assert comparison.removals == []


def test_changed_types_are_breaking_and_additions_are_not():
    changed = published.compare(BASE, BASE.replace("kept: Int", "kept: String"), today=TODAY)
    assert len(changed.unintended) == 1 and "kept" in changed.unintended[0].description
    added = published.compare(
        BASE, BASE.replace("kept: Int", "kept: Int\n  added(first: Int): [Item!]")
        .replace("enum State { OK", "enum State { OK NEW"), today=TODAY)
    assert added.unintended == [] and added.removals == []
    assert ["NEW" in c.description for c in added.dangerous] == [True]


def test_writing_the_schema_refuses_an_unintended_breaking_change(tmp_path):
    target = tmp_path / "schema.graphql"
    current = sdl()
    assert "type Query {\n" in current
    older = current.replace("type Query {\n", "type Query {\n  oldField: Int\n", 1)
    target.write_text(older)
    refused = run_cli("schema", "--output", str(target))
    assert refused.returncode == 1
    assert "Query.oldField" in refused.stderr and "Removal after" in refused.stderr
    assert target.read_text() == older  # nothing written
    target.write_text(older.replace(
        "oldField: Int", 'oldField: Int @deprecated(reason: "Removal after 2000-01-01.")'))
    written = run_cli("schema", "--output", str(target))
    assert written.returncode == 0, written.stderr
    assert "removal after its deprecation period" in written.stdout
    assert target.read_text() == current
