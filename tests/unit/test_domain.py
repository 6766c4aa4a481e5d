"""Domain rules, no I/O."""
from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

import pytest

from inventory.domain import codec, ids
from inventory.domain.commands import (
    MAX_QUANTITY,
    AdjustStock,
    CreateItem,
    CreateLocation,
    ReceiveStock,
    ReserveLine,
    ReserveStock,
    SetStock,
    TransferStock,
    UpdateItem,
    validate_idempotency_key,
)
from inventory.domain.errors import ErrorCode, Shortage, UserError
from inventory.domain.models import (
    ReservationLineView,
    ReservationStatus,
    ReservationView,
    StockLevelView,
    TransferView,
)
from inventory.domain.quantities import KIND_RULES, MovementKind, Quantities


def code_of(command):
    error = command.validate()
    return (error.code, error.field) if error else None


@pytest.mark.parametrize("quantity, ok", [
    (1, True), (MAX_QUANTITY, True), (0, False), (-5, False), (MAX_QUANTITY + 1, False),
])
def test_receive_quantity_bounds(quantity, ok):
    result = code_of(ReceiveStock("SKU-1", "WH-1", quantity))
    assert result is None if ok else result == (ErrorCode.INVALID_INPUT, "quantity")


@pytest.mark.parametrize("sku", ["", " ", "a b", "x" * 65, "-lead", "ü"])
def test_bad_skus_are_invalid(sku):
    assert code_of(CreateItem(sku, "name")) == (ErrorCode.INVALID_INPUT, "sku")


def test_names_must_not_be_blank():
    assert code_of(CreateLocation("WH-1", "   ")) == (ErrorCode.INVALID_INPUT, "name")
    assert code_of(CreateLocation("WH-1", "East")) is None


def test_adjust_delta_zero_is_invalid_but_negative_is_allowed():
    assert code_of(AdjustStock("S", "L", 0)) == (ErrorCode.INVALID_INPUT, "delta")
    assert code_of(AdjustStock("S", "L", -3)) is None


def test_set_stock_rejects_negative_on_hand_and_compare():
    assert code_of(SetStock("S", "L", -1)) == (ErrorCode.INVALID_INPUT, "onHand")
    assert code_of(SetStock("S", "L", 1, -1)) == (ErrorCode.INVALID_INPUT, "compareQuantity")


def test_transfer_to_same_location_is_invalid():
    assert code_of(TransferStock("S", "L", "L", 1)) == (ErrorCode.INVALID_INPUT, "toLocationCode")


def test_update_item_needs_a_change_and_valid_values():
    assert code_of(UpdateItem("S", 0)) == (ErrorCode.INVALID_INPUT, "input")
    assert code_of(UpdateItem("S", -1, name="x")) == (ErrorCode.INVALID_INPUT, "version")
    assert code_of(UpdateItem("S", 0, name=" ")) == (ErrorCode.INVALID_INPUT, "name")
    assert code_of(UpdateItem("S", 0, reorder_point=-1)) == (ErrorCode.INVALID_INPUT,
                                                             "reorderPoint")
    assert code_of(UpdateItem("S", 3, reorder_point=0)) is None


def test_a_field_added_later_keeps_stored_keys_matching_while_unset():
    """reasonCode came after keys were stored for receiveStock: a request
    without it hashes as before, one with it differently."""
    from inventory.domain.reasons import Reason

    plain = ReceiveStock("S", "L", 1).canonical()
    assert plain == {"operation": "receiveStock", "input": {
        "sku": "S", "location_code": "L", "quantity": 1, "reason": None, "reference": None}}
    coded = ReceiveStock("S", "L", 1, reason_code=Reason.DAMAGED).canonical()
    assert coded["input"]["reason_code"] == "DAMAGED"


def test_reserve_lines_rules():
    line = ReserveLine("S", "L", 1)
    assert code_of(ReserveStock(())) == (ErrorCode.INVALID_INPUT, "lines")
    assert code_of(ReserveStock((line, line))) == (ErrorCode.INVALID_INPUT, "lines[1]")
    assert code_of(ReserveStock((line,), ttl_seconds=0)) == (ErrorCode.INVALID_INPUT, "ttlSeconds")
    assert code_of(ReserveStock((ReserveLine("S", "L", 0),))) == (
        ErrorCode.INVALID_INPUT, "lines[0].quantity")
    assert code_of(ReserveStock(tuple(ReserveLine(f"S{i}", "L", 1) for i in range(101)))) == (
        ErrorCode.INVALID_INPUT, "lines")
    assert code_of(ReserveStock((line, ReserveLine("S", "M", 1)))) is None


def test_idempotency_key_rules():
    assert validate_idempotency_key(None) is None
    assert validate_idempotency_key("order-1") is None
    assert validate_idempotency_key("").code is ErrorCode.INVALID_INPUT
    assert validate_idempotency_key("x" * 201).code is ErrorCode.INVALID_INPUT
    assert validate_idempotency_key("a\nb").code is ErrorCode.INVALID_INPUT


def test_canonical_form_distinguishes_inputs_and_operations():
    a = ReceiveStock("S", "L", 1).canonical()
    assert a == ReceiveStock("S", "L", 1).canonical()
    assert a != ReceiveStock("S", "L", 2).canonical()
    assert a["operation"] == "receiveStock"


def test_codec_round_trips_results_and_errors():
    now = datetime.now(timezone.utc)
    level = StockLevelView(uuid4(), uuid4(), "S", "L", Quantities(on_hand=10, reserved=3), 7, now)
    reservation = ReservationView(
        uuid4(), ReservationStatus.ACTIVE, "order-9", now, now,
        (ReservationLineView(uuid4(), uuid4(), "S", "L", 2),),
    )
    error = UserError(ErrorCode.INSUFFICIENT_STOCK, "short", shortages=(Shortage("S", "L", 5, 1),))
    for value in (level, reservation, TransferView("S", 1, level, level), error):
        assert codec.load(codec.dump(value)) == value


def test_codec_reads_levels_stored_before_states_were_grouped():
    now = datetime.now(timezone.utc)
    level = StockLevelView(uuid4(), uuid4(), "S", "L", Quantities(on_hand=10, reserved=3), 7, now)
    stored = codec.dump(level)
    stored.update(on_hand=10, reserved=3)
    del stored["quantities"]
    assert codec.load(stored) == level
    assert level.available == 7 and level.on_hand == 10


def test_every_ledger_kind_has_a_rule_that_its_own_movements_satisfy():
    assert set(KIND_RULES) == set(MovementKind)
    assert KIND_RULES[MovementKind.COMMIT].allows({"on_hand": -2, "reserved": -2})
    assert not KIND_RULES[MovementKind.COMMIT].allows({"on_hand": -2, "reserved": -1})
    assert not KIND_RULES[MovementKind.RESERVE].allows({"on_hand": 1, "reserved": 1})
    assert Quantities(on_hand=5, reserved=5).available == 0
    assert Quantities(on_hand=1, reserved=2).negative() == ["available"]


def test_a_filled_backorder_moves_units_from_backordered_to_reserved():
    rule = KIND_RULES[MovementKind.BACKORDER_FILLED]
    assert rule.allows({"reserved": 2, "backordered": -2})
    assert not rule.allows({"reserved": 2, "backordered": -1})
    assert KIND_RULES[MovementKind.RESERVE].allows({"reserved": 0, "backordered": 3})
    # Backordered units are not on hand: they do not count in available.
    assert Quantities(on_hand=0, backordered=5).available == 0


def test_global_ids_round_trip_and_reject_garbage():
    a, b = uuid4(), uuid4()
    assert ids.decode(ids.encode("StockLevel", a, b)) == ("StockLevel", (a, b))
    assert ids.decode_as("Item", ids.encode("Item", a)) == (a,)
    for bad in ["", "zzz", "SXRlbTpub3QtYS11dWlk", ids.encode("Item", a) + "!!"]:
        with pytest.raises(ids.MalformedId):
            ids.decode_as("Item", bad)
    with pytest.raises(ids.MalformedId):
        ids.decode_as("Reservation", ids.encode("Item", a))


def test_quantities_from_values_in_state_order():
    from inventory.domain.quantities import NAMES, available

    given = {name: 10 * (i + 1) for i, name in enumerate(NAMES)}
    full = Quantities(given)
    fast = Quantities.of_values(tuple(given[name] for name in NAMES))
    assert fast == full and dict(fast) == given == fast.as_dict()
    # The positional formula is the formula.
    assert fast.available == full.available == available(given)
