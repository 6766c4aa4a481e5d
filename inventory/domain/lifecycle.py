"""What a partial (or whole) commit or release takes from a reservation's
lines: decided from the lines as read, before anything is written."""
from __future__ import annotations

from .commands import LinePart
from .errors import ErrorCode, UserError, invalid
from .models import ReservationLineView


def take_from(lines: tuple[ReservationLineView, ...], parts: tuple[LinePart, ...] | None
              ) -> list[tuple[ReservationLineView, int]] | UserError:
    """(line, quantity) pairs, in line order: every unit still held when `parts`
    is None, else what each part names (its whole holding when it gives no
    quantity). INVALID_INPUT naming the part for an unknown line number or a
    quantity above what the line still holds.

    A kit's component lines move together, in whole kits: a part naming any
    line of a kit group counts `quantity` in kits and takes that many kits'
    units from every line of the group."""
    if parts is None:
        return [(line, line.held) for line in lines if line.held > 0]
    by_number = {line.line_no: line for line in lines}
    groups: dict[int, list[ReservationLineView]] = {}
    for line in lines:
        if line.kit_line is not None:
            groups.setdefault(line.kit_line, []).append(line)
    taken, named_groups = [], set()
    for i, part in enumerate(parts):
        line = by_number.get(part.line_number)
        if line is None:
            return invalid(f"lines[{i}].lineNumber",
                           f"the reservation has no line {part.line_number}")
        if line.kit_line is not None:
            if line.kit_line in named_groups:
                return invalid(f"lines[{i}].lineNumber",
                               f"line {part.line_number} belongs to kit line {line.kit_line}, "
                               "named already: a kit's lines move together")
            named_groups.add(line.kit_line)
            kits = line.held // line.per_kit
            wanted = kits if part.quantity is None else part.quantity
            if wanted > kits or wanted == 0:
                return invalid(f"lines[{i}].quantity",
                               f"line {part.line_number} is part of {line.kit_sku!r} kits: "
                               f"it holds {kits} kits, not {wanted}")
            taken.extend((l, wanted * l.per_kit) for l in groups[line.kit_line])
            continue
        quantity = line.held if part.quantity is None else part.quantity
        if quantity > line.held or quantity == 0:
            return invalid(f"lines[{i}].quantity",
                           f"line {part.line_number} holds {line.held}, not {quantity}")
        taken.append((line, quantity))
    return sorted(taken, key=lambda t: t[0].line_no)


def refuse_unfilled(taken: list[tuple[ReservationLineView, int]],
                    parts: tuple[LinePart, ...] | None) -> UserError | None:
    """A commit ships only units on hand: RESERVATION_BACKORDERED (nothing
    ships) when it would take more of a line than is filled. A partial commit
    may take a line's filled units while the rest still waits; a whole commit
    (no parts) of a reservation with any unit backordered is refused."""
    short = [(i, line, quantity) for i, (line, quantity) in enumerate(taken)
             if quantity > line.filled]
    if not short:
        return None
    waiting = sum(line.backordered for _, line, _ in short)
    if parts is None:
        return UserError(
            ErrorCode.RESERVATION_BACKORDERED,
            f"{waiting} units of this reservation are backordered: nothing ships until they "
            "are filled (a stockLevelChanged event of kind BACKORDER_FILLED says so); commit "
            "the filled units line by line, or release it",
            field="reservationId", backordered=waiting)
    # Report the first part in the order given (`taken` is sorted by line).
    by_number = {line.line_no: (line, quantity) for _, line, quantity in short}
    i, part = next((i, p) for i, p in enumerate(parts) if p.line_number in by_number)
    line, quantity = by_number[part.line_number]
    return UserError(
        ErrorCode.RESERVATION_BACKORDERED,
        f"line {line.line_no} has {line.filled} units filled and {line.backordered} "
        f"backordered: {quantity} cannot ship; nothing was shipped",
        field=f"lines[{i}].quantity", backordered=waiting)


def release_split(line: ReservationLineView, quantity: int) -> tuple[int, int]:
    """(reserved, backordered) a release of `quantity` from `line` gives back:
    backordered units first, so what waits is given up before stock on hand."""
    backordered = min(quantity, line.backordered)
    return quantity - backordered, backordered
