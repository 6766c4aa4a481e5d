"""The actual cost of an answer (inventory/auth/cost.py `actual_cost`): each
object 1, each element of a connection's list 1 more, scalars and nulls 0,
lists at the elements they really have."""
from graphql import parse

from inventory.auth.cost import Analysis, CostLimits
from inventory.resolvers.root import build_schema

PAGE = """query { items(first: 3) { __typename pageInfo { hasNextPage } edges { cursor
  node { sku stockLevels { onHand location { code } item { sku } } } } } }"""


def test_actual_cost_counts_the_objects_answered():
    schema = build_schema()._schema
    analysis = Analysis(parse(PAGE), None, schema, CostLimits())
    level = {"onHand": 1, "location": {"code": "A"}, "item": None}
    data = {"items": {"__typename": "ItemConnection", "pageInfo": {"hasNextPage": False},
                      "edges": [
                          {"cursor": "c", "node": {"sku": "S", "stockLevels": [level, level]}},
                          {"cursor": "d", "node": {"sku": "T", "stockLevels": []}},
                          None,
                      ]}}
    # items 1 + 1 (a connection), pageInfo 1, 2 edges 1 each, 2 nodes 1 each,
    # 2 levels 1 each and their 2 locations (their items are null)
    assert analysis.actual_cost(data) == 2 + 1 + 2 + 2 + 2 + 2
    assert analysis.actual_cost({"items": None}) == 0
