"""Sales channels: createChannel, updateChannel (compare-and-swap), channel,
channels, and Item.availability(channelCode)."""
from __future__ import annotations

from .support import unique

# `code` would clash with UserError.code in one selection: aliased.
CHANNEL_FIELDS = "... on Channel { id channelCode: code name version locations { code } }"
VERSION_FIELDS = "... on VersionMismatchError { expected actual }"
AVAILABILITY = """query($sku: String!, $channel: String!) { item(sku: $sku) {
    availability(channelCode: $channel) {
      channelCode available locations { locationCode available location { code } } } } }"""


async def make_channel(api, codes: list[str], code: str | None = None) -> str:
    code = code or unique("CH")
    await api.succeed("createChannel", {"code": code, "name": f"Channel {code}",
                                        "locationCodes": codes})
    return code


async def test_create_read_and_list_channels(api):
    a, b = await api.location(), await api.location()
    code = unique("CH")
    made = await api.succeed("createChannel", {"code": code, "name": "Web shop",
                                               "locationCodes": [b, a]}, CHANNEL_FIELDS)
    assert (made["channelCode"], made["name"], made["version"]) == (code, "Web shop", 1)
    assert [l["code"] for l in made["locations"]] == [b, a]  # the order given
    read = await api.gql("query($c: String!) { channel(code: $c) { id version locations "
                         "{ code } } }", {"c": code})
    assert read["channel"] == {"id": made["id"], "version": 1,
                               "locations": [{"code": b}, {"code": a}]}
    node = await api.gql("query($id: ID!) { node(id: $id) { ... on Channel { code } } }",
                         {"id": made["id"]})
    assert node["node"] == {"code": code}
    assert (await api.gql('{ channel(code: "NO-SUCH-CHANNEL") { id } }'))["channel"] is None
    codes, after = [], None
    while True:  # every page, two at a time
        page = (await api.gql("query($a: String) { channels(first: 2, after: $a) { "
                              "nodes { code } pageInfo { hasNextPage endCursor } } }",
                              {"a": after}))["channels"]
        codes += [n["code"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert code in codes and codes == sorted(codes)
    again = await api.mutate("createChannel", {"code": code, "name": "x", "locationCodes": [a]})
    assert (again["code"], again["field"]) == ("ALREADY_EXISTS", "code")


async def test_update_is_compare_and_swap_on_the_version(api):
    a, b, c = await api.location(), await api.location(), await api.location()
    code = await make_channel(api, [a, b])
    moved = await api.succeed("updateChannel", {"code": code, "expectedVersion": 1,
                                                "locationCodes": [c, a]}, CHANNEL_FIELDS)
    assert moved["version"] == 2 and [l["code"] for l in moved["locations"]] == [c, a]
    renamed = await api.succeed("updateChannel", {"code": code, "expectedVersion": 2,
                                                  "name": "Renamed"}, CHANNEL_FIELDS)
    assert (renamed["name"], renamed["version"]) == ("Renamed", 3)
    assert [l["code"] for l in renamed["locations"]] == [c, a]  # kept
    stale = await api.mutate("updateChannel", {"code": code, "expectedVersion": 2,
                                               "name": "Lost update"}, VERSION_FIELDS)
    assert (stale["code"], stale["expected"], stale["actual"]) == ("VERSION_MISMATCH", 2, 3)
    read = await api.gql("query($c: String!) { channel(code: $c) { name version } }",
                         {"c": code})
    assert read["channel"] == {"name": "Renamed", "version": 3}


async def test_concurrent_updates_with_one_version_let_exactly_one_win(api):
    import asyncio

    a, b = await api.location(), await api.location()
    code = await make_channel(api, [a])
    results = await asyncio.gather(*[
        api.mutate("updateChannel", {"code": code, "expectedVersion": 1,
                                     "locationCodes": [b] if i % 2 else [a, b],
                                     "idempotencyKey": unique("k")}) for i in range(8)])
    kinds = sorted(r["__typename"] for r in results)
    assert kinds.count("Channel") == 1, results
    assert set(kinds) <= {"Channel", "VersionMismatchError", "TransientError"}, results


async def test_availability_sums_the_channel_locations(api, stocked_level):
    sku, a, b, c = await stocked_level(0, locations=3)
    await api.receive(sku, a, 4)
    await api.receive(sku, b, 6)
    await api.receive(sku, c, 100)  # not in the channel
    await api.succeed("reserveStock", {"lines": [{"sku": sku, "locationCode": b,
                                                  "quantity": 2}]})
    empty = await api.location()  # in the channel, never stocked
    code = await make_channel(api, [b, empty, a])
    got = (await api.gql(AVAILABILITY, {"sku": sku, "channel": code}))["item"]["availability"]
    assert got == {"channelCode": code, "available": 8, "locations": [
        {"locationCode": b, "available": 4, "location": {"code": b}},
        {"locationCode": empty, "available": 0, "location": {"code": empty}},
        {"locationCode": a, "available": 4, "location": {"code": a}}]}


async def test_availability_of_an_unknown_channel_is_not_found(api, stocked_level):
    sku, _ = await stocked_level(1)
    body = await api.raw(AVAILABILITY, {"sku": sku, "channel": "NO-SUCH-CHANNEL"})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body


async def test_channel_mutations_replay_with_their_key(api):
    a, b = await api.location(), await api.location()
    code, key = unique("CH"), unique("k")
    body = {"code": code, "name": "Keyed", "locationCodes": [a], "idempotencyKey": key}
    first = await api.succeed("createChannel", body, CHANNEL_FIELDS)
    assert await api.succeed("createChannel", body, CHANNEL_FIELDS) == first
    reused = await api.mutate("createChannel", {**body, "name": "Other"})
    assert reused["code"] == "IDEMPOTENCY_KEY_REUSED"
    update = {"code": code, "expectedVersion": 1, "locationCodes": [b, a],
              "idempotencyKey": unique("k")}
    moved = await api.succeed("updateChannel", update, CHANNEL_FIELDS)
    assert await api.succeed("updateChannel", update, CHANNEL_FIELDS) == moved  # not stale
    assert moved["version"] == 2
